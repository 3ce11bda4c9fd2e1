"""The LLM side: an OpenAI-protocol client, its types, answer parsing, transcripts, providers, the local server and
model fetch. It knows nothing of agents, the optimizer, the verifier or the cache."""
