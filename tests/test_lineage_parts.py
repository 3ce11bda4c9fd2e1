"""The parts of a lineage on their own: node compiles, the code digest that finds duplicates, old run states, the
LLM guide's view of the tree. Real clang; the LLM guide through the real client and the scripted server."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from coopt.agents.levels import HotTU, child_job, start_job
from coopt.journal.job import CompileJob
from coopt.optimize import lineage
from coopt.optimize.search.guide import Guide
from coopt.optimize.search.llm_guide import LLMGuide
from coopt.optimize.state import AttemptRecord, Outcome, load
from test_llm_client import ProtocolServer, Reply, completion, scripted_client
from test_optimize_parts import _state


def _tu(tmp_path: Path) -> HotTU:
    if not shutil.which("clang"):
        pytest.skip("no clang")
    (tmp_path / "hot.h").write_text("int f(int x);\n")
    (tmp_path / "hot.c").write_text('#include "hot.h"\nint f(int x) { return x * 3; }\n')
    job = CompileJob(str(tmp_path), "clang", ["-O0", "-c", "hot.c", "-o", "hot.o"], ["-O0"], "hot.c", "hot.o", [])
    return HotTU(str(tmp_path / "hot.o"), str(tmp_path / "hot.c"), 0.9, job, ["f"])


def _rec(n: int, level: str, parent: int, **kw: object) -> AttemptRecord:
    return AttemptRecord(n, "", "", level, "l%d" % n, "p", Outcome.ACCEPTED, parent=parent, **kw)  # type: ignore


def test_a_nodes_compile_is_its_parents_code_with_its_own_step(tmp_path: Path) -> None:
    tu = _tu(tmp_path)
    tu.object = ""
    rewritten = tmp_path / "nodes" / "1-hot-f-s0.c"
    rewritten.parent.mkdir()
    rewritten.write_text('#include "hot.h"\nint f(int x) { return x + x + x; }\n')
    nodes = [_rec(1, "source", 0, artifact=str(rewritten)), _rec(2, "flags", 1, flags=["-O3"]),
             _rec(3, "ir", 2), _rec(4, "flags", 3)]
    assert [a.number for a in lineage.chain(nodes, nodes[1])] == [1, 2]
    job = lineage.node_job(tu, nodes, nodes[1])
    assert job is not None and job.source_path == str(rewritten) and job.key_args[-1] == "-O3"
    # The rewritten TU's quote includes still resolve against the original's directory: it compiles.
    out = tmp_path / "n2.o"
    subprocess.run(job.replay_command(job.source, str(out)), cwd=job.cwd, check=True)
    assert job.output == "hot.o"  # a relink replaces the original's object
    assert lineage.node_job(tu, nodes, nodes[2]) is None  # IR is a leaf
    node = lineage.node(tu, nodes, nodes[1])
    assert node is not None and start_job(tu, node) is node.job and start_job(tu, None) is tu.job
    assert lineage.lineage_text(nodes, nodes[1]) == "original -> #1 source (l1) -> #2 flags (l2)"
    flags = child_job(tu.job, flags=["-O3"])
    assert flags.source == "hot.c" and flags.key_args == ["-O0", "-O3"]


def test_objects_that_differ_only_in_their_file_name_are_duplicates(tmp_path: Path) -> None:
    tu = _tu(tmp_path)
    a, b = tmp_path / "a-s0.c", tmp_path / "bb-s1.c"
    a.write_text('#include "hot.h"\nint f(int x) { return x * 3; }\n')
    b.write_text('#include "hot.h"\nint f(int x) { return x * 3; } /* a comment */\n')
    objs = []
    for src in (a, b):
        subprocess.run(tu.job.replay_command(str(src), str(src) + ".o"), cwd=tmp_path, check=True)
        objs.append(str(src) + ".o")
    assert Path(objs[0]).read_bytes() != Path(objs[1]).read_bytes()  # the file name is in the symbol table
    assert lineage.code_digest(objs[0]) == lineage.code_digest(objs[1])
    subprocess.run(tu.job.replay_command(str(a), str(tmp_path / "o3.o"), ["-O3"]), cwd=tmp_path, check=True)
    assert lineage.code_digest(str(tmp_path / "o3.o")) != lineage.code_digest(objs[0])


def test_a_run_state_from_before_lineages_loads_as_a_tree_of_depth_one(tmp_path: Path) -> None:
    from coopt.optimize.state import save

    save(_state(), str(tmp_path))
    data = json.loads((tmp_path / "state.json").read_text())
    for a in data["attempts"]:
        for name in ("parent", "artifact", "artifact_digest", "object_digest", "duplicate_of", "no_candidate", "free"):
            del a[name]
    (tmp_path / "state.json").write_text(json.dumps(data))
    back = load(str(tmp_path))
    assert [a.parent for a in back.attempts] == [0, 0] and back.attempts[0].verdict is Outcome.ACCEPTED


def test_the_llm_guide_sees_each_node_it_may_build_on(tmp_path: Path) -> None:
    guide = Guide({"/b/hot.o": 0.9}, levels=("source", "flags"))
    guide.accepted("/b/hot.o", 1, "source", 1.3)
    with ProtocolServer() as server:
        g = LLMGuide(guide, scripted_client(server, tmp_path, None, timeout=2.0))
        g.nodes[("/b/hot.o", 1)] = "original -> #1 source (mix sample 0), verified 1.300x"
        live = [a for a in guide.arms if not a.retired]
        pick = next(i for i, a in enumerate(live, 1) if a.node == 1 and a.level == "flags")
        call = {"id": "c1", "type": "function", "function": {"name": "choose", "arguments": json.dumps({"arm": pick})}}
        server.script = [Reply(completion(None, tool_calls=[call], usage=(200, 12)))]
        arm = g.next_arm()
        table = server.requests[0]["json"]["messages"][1]["content"]
    assert arm is not None and (arm.node, arm.level) == (1, "flags")
    assert "| original -> #1 source (mix sample 0), verified 1.300x | flags |" in table
    assert "| original | source |" in table


def test_ir_and_assembly_agents_lower_the_nodes_code(tmp_path: Path) -> None:
    from coopt.agents.rewrite.asm import AsmAgent
    from coopt.agents.rewrite.ir import IRAgent

    tu = _tu(tmp_path)
    rewritten = tmp_path / "nodes" / "1-hot-f-s0.c"
    rewritten.parent.mkdir()
    rewritten.write_text('#include "hot.h"\nint f(int x) { return x * 3 + 1234567; }\n')
    tu.object = ""
    nodes = [_rec(1, "source", 0, artifact=str(rewritten)), _rec(2, "flags", 1, flags=["-O2"])]
    job = lineage.node_job(tu, nodes, nodes[1])
    assert job is not None
    ir = IRAgent(None, str(tmp_path / "w"))  # type: ignore[arg-type]
    shown = ir.prepare(job, "f").region.shown
    assert "1234567" in shown and "alloca" not in shown  # the rewritten function, at the node's -O2
    if subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout.strip() == "x86_64":
        asm = AsmAgent(None, str(tmp_path / "w2"))  # type: ignore[arg-type]
        assert "1234567" in asm.prepare(job, "f").region.shown


def test_pgo_never_instruments_a_compile_that_already_uses_a_profile(tmp_path: Path) -> None:
    # PGO, then flags on it, then PGO on the flags node: the compile holds -fprofile-instr-use from the first step,
    # and clang refuses to instrument it ("not allowed with -fprofile-instr-use="); the level offers nothing there.
    from coopt.agents.levels import AgentContext, AgentSettings, Node, PgoAgent

    tu = _tu(tmp_path)
    agent = PgoAgent(AgentContext(None, [tu], None, True, str(tmp_path / "agents"), AgentSettings()))  # type: ignore
    assert agent.has_more(tu, None)
    plain = child_job(tu.job, flags=["-O3"])
    assert agent.has_more(tu, Node(2, "flags", "-O3", plain))
    profiled = child_job(tu.job, flags=["-fprofile-instr-use=/r/nodes/1-merged.profdata", "-O3"])
    assert not agent.has_more(tu, Node(2, "flags", "-O3", profiled))
