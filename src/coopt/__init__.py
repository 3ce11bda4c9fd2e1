"""coopt: a C compiler wrapper that serves verified, faster variants of hot translation units.

Importing this package does nothing but define the version: `coopt-cc` imports it once per compile.
"""

__version__ = "0.1.0"
