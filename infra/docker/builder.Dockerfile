# The image `conveyor builder` runs in on Nomad: the control-plane image plus what a build calls —
# the docker CLI with its buildx plugin (talking to the BuildKit daemon beside it, never to a
# Docker daemon) and git (fetching the commit).
#   docker build -f infra/docker/builder.Dockerfile \
#     --build-arg SERVER_IMAGE=<…>/conveyor/server:<tag> -t <…>/conveyor/server:<tag>-builder .
ARG SERVER_IMAGE=conveyor:latest
ARG DOCKER_CLI_IMAGE=docker:27-cli
ARG BUILDX_IMAGE=docker/buildx-bin:0.17

FROM ${DOCKER_CLI_IMAGE} AS cli
FROM ${BUILDX_IMAGE} AS buildx

FROM ${SERVER_IMAGE}
USER root
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends git ca-certificates >/dev/null \
 && rm -rf /var/lib/apt/lists/*
COPY --from=cli /usr/local/bin/docker /usr/bin/docker
COPY --from=buildx /buildx /usr/libexec/docker/cli-plugins/docker-buildx
USER conveyor
CMD ["conveyor", "builder"]
