# DDRNet training image for NVIDIA GPUs. PyPI's torch wheels for Linux bundle CUDA; the host needs only the driver
# and the NVIDIA Container Toolkit.
#   docker build -t ddrnet .
#   docker run --gpus all --shm-size=8g -v /data/cityscapes:/data -v "$PWD/outputs:/workspace/ddrnet/outputs" ddrnet \
#     accelerate launch --config_file configs/accelerate/single_gpu.yaml scripts/train.py \
#       --variant ddrnet-23-slim --data_dir /data --output_dir outputs/ddrnet-23-slim --mixed_precision bf16
# The package is installed from its wheel, as users get it, not from the source tree.
FROM python:3.11.11-slim-bookworm AS wheel
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY modeling_ddrnet ./modeling_ddrnet
COPY ddrnet_toolkit ./ddrnet_toolkit
COPY dataset_builders ./dataset_builders
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    HF_HOME=/workspace/hf-cache

WORKDIR /workspace/ddrnet

# torch first, in its own layer: it is by far the largest and changes least often.
RUN pip install torch==2.13.0

COPY --from=wheel /wheels /tmp/wheels
RUN pip install --find-links /tmp/wheels "ddrnet-hf[train]==0.2.0" && rm -rf /tmp/wheels

COPY scripts ./scripts
COPY configs ./configs

RUN useradd --create-home --uid 1000 ddrnet && mkdir -p outputs /workspace/hf-cache \
    && chown -R ddrnet /workspace
USER 1000

CMD ["python", "scripts/train.py", "--help"]
