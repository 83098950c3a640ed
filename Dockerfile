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

# torch from its own index (PyPI's Linux wheel is a multi-GB CUDA build); the rest from pyproject.toml
RUN pip install --no-cache-dir --user "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"

# the package (editable: it finds the embedded weights in checkpoints/ beside itself), the app, the weights
COPY --chown=user pyproject.toml README.md app.py ./
COPY --chown=user changeanywhere ./changeanywhere
RUN pip install --no-cache-dir --user -e .
COPY --chown=user checkpoints ./checkpoints
# export the UNet and autoencoder to ONNX now (~1 min), so the Space's first start does not; a failure here only
# means the app exports at start
RUN python -c "from changeanywhere import demo; demo.load_models()" \
    || echo "ONNX pre-export failed: the app will export at its first start"
COPY --chown=user assets ./assets

EXPOSE 7860
CMD ["python", "app.py"]
