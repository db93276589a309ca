"""builderfile: a pure-Python parser for Dockerfile syntax, compatible with BuildKit's `dockerfile:1` frontend.

Standalone: stdlib only, never imports imagekit. The layers, each usable alone:
`syntax.parse` (text -> Document of Nodes, exactly BuildKit's AST), `instructions.load` / `check`
(typed instructions, flags, stages), `expand.expand` (variables, with BuildKit's scoping),
`shell.Lex` (BuildKit's shell lexer) and `ignore` (.dockerignore matching).
"""
