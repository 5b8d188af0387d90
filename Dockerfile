# One image for the operator (`modelroute operator`) and the injected sidecar (`modelroute sidecar`).
#   docker build -t ghcr.io/modelroute/modelroute:0.1.0 .
# Multi-stage: wheels are built in the first stage, the runtime stage has no compiler and runs as
# a non-root user with a read-only root filesystem (the chart sets readOnlyRootFilesystem).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --upgrade pip \
 && pip wheel --no-cache-dir --wheel-dir /wheels '.[operator]'

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels 'modelroute[operator]' && rm -rf /wheels \
 && useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin modelroute
USER 65532:65532
# 4000: the sidecar (127.0.0.1 in the pod); 8080: the operator's distribution endpoint; 9443: webhook.
EXPOSE 4000 8080 9443
ENTRYPOINT ["modelroute"]
CMD ["--help"]
