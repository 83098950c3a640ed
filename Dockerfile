# The ChangeAnywhere demo as a container: a Hugging Face Docker Space, or any Docker host.
#   docker build -t changeanywhere . && docker run --rm -p 7860:7860 changeanywhere
#   (another model: docker run -e CHANGEANYWHERE_MODEL=org/name ...; a GPU image: --build-arg TORCH_INDEX=...cu128)
# Spaces conventions: runs as UID 1000, listens on 0.0.0.0:7860. The embedded weights under checkpoints/ are
# copied in, so the container needs no network at run time.
FROM python:3.12-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_DISABLE_TELEMETRY=1
WORKDIR $HOME/app

# dependencies first (a layer that survives code changes); torch from its own index: PyPI's is a CUDA build
RUN pip install --no-cache-dir --user "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"
COPY --chown=user requirements.txt ./
RUN pip install --no-cache-dir --user -r requirements.txt "gradio>=6.20,<7"

# the package, the app and the embedded weights (the package finds checkpoints/ beside itself: keep the layout)
COPY --chown=user pyproject.toml README.md app.py ./
COPY --chown=user changeanywhere ./changeanywhere
COPY --chown=user checkpoints ./checkpoints
RUN pip install --no-cache-dir --user --no-deps -e .

EXPOSE 7860
CMD ["python", "app.py"]
