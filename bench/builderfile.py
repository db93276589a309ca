"""Parse a generated 20,000-line Builderfile: builderfile against `dockerfile` (BuildKit's Go parser) and `dockerfile-parse`.

Target: at least as fast as `dockerfile` in the same run (ratio >= 1.00).
"""

from __future__ import annotations

import io

import dockerfile
from dockerfile_parse import DockerfileParser

from bench._report import ratio, time_interleaved
from builderfile.syntax import parse

LINES = 20_000

# A realistic mix: stages, flags, continuations with comments, JSON forms, ENV pairs, heredocs.
_BLOCK = """\
# stage {n}
FROM --platform=$BUILDPLATFORM golang:1.22 AS build{n}
ARG VERSION=1.{n} TARGETOS
ENV GOPATH=/go PATH="/go/bin:$PATH" CGO_ENABLED=0
WORKDIR /src/app{n}
COPY --from=deps --chown=1000:1000 go.mod go.sum ./
RUN --mount=type=cache,target=/root/.cache/go-build \\
    # fetch modules first
    go mod download && \\
    go build -o /out/app{n} ./cmd/app{n}
LABEL org.opencontainers.image.title="app {n}" version=$VERSION
RUN <<EOF
set -e
echo building {n}
EOF
EXPOSE 8080/tcp 9090
HEALTHCHECK --interval=30s CMD ["/out/app{n}", "health"]
ENTRYPOINT ["/out/app{n}"]
CMD ["--serve", "--port=8080"]

"""


def generate(lines: int = LINES) -> str:
    """Builderfile text of exactly `lines` lines, cut at an instruction boundary and padded with comments."""
    out: list[str] = []
    n = 0
    while len(out) < lines:
        out += _BLOCK.format(n=n).splitlines()
        n += 1
    out = out[:lines]
    while out and out[-1].startswith(("    ", "set -e", "echo", "RUN <<", "RUN --mount")):
        out[-1] = "# padding"
    return "\n".join(out) + "\n"


def main() -> None:
    text = generate()
    data = text.encode()
    counts = {len(parse(data).nodes), len(dockerfile.parse_string(text))}
    assert len(counts) == 1, counts  # both see the same instructions
    times = time_interleaved(
        {
            "builderfile": lambda: parse(data),
            "dockerfile": lambda: dockerfile.parse_string(text),
            "dockerfile-parse": lambda: DockerfileParser(fileobj=io.BytesIO(data)).structure,
        },
        rounds=5,
    )
    ratio("builderfile parse 20k lines vs dockerfile (Go)", times["builderfile"], times["dockerfile"], "dockerfile", ">= 1.00")
    ratio("builderfile parse 20k lines vs dockerfile-parse", times["builderfile"], times["dockerfile-parse"], "dockerfile-parse")


if __name__ == "__main__":
    main()
