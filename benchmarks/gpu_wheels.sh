#!/usr/bin/env bash
# The wheels a bare GPU image (torch, transformers, sentencepiece, pyarrow, rich, click, numpy) lacks for
# benchmarks/gpu_cgh.sh: polars, DeepSpeed (pure Python, built with DS_BUILD_OPS=0) and their dependencies,
# for CPython 3.12 on x86-64 Linux. Carry the folder to the GPU machine.
#
#   PYTHON=.venv/bin/python bash benchmarks/gpu_wheels.sh .gpu_wheels [PYTHON_VERSION]
set -eu
dest=${1:?usage: gpu_wheels.sh DIR [PYTHON_VERSION]}
version=${2:-3.12}
py=${PYTHON:-python}  # the wheel is built with this Python, which needs torch
mkdir -p "$dest"
"$py" -m pip download -q --dest "$dest" --no-deps --only-binary :all: --python-version "$version" \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  polars polars-runtime-32 hjson "pydantic>=2" pydantic-core annotated-types typing-inspection \
  "typing-extensions>=4.16" protobuf pyyaml psutil py-cpuinfo einops msgpack ninja tensorboardX
if ! ls "$dest"/deepspeed-*.whl >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  "$py" -m pip download -q --no-deps --no-binary :all: --dest "$tmp" deepspeed
  DS_BUILD_OPS=0 "$py" -m pip wheel -q --no-deps --no-build-isolation --wheel-dir "$dest" "$tmp"/deepspeed-*.tar.gz
  rm -rf "$tmp"
fi
du -sh "$dest"; ls "$dest"
