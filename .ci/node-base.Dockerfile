# The local Node base image (conveyor-node-base:bookworm): the Python base made by
# setup.d/20-docker.sh with Debian's nodejs and npm. Built by setup.d/21-node-image.sh.
ARG BASE_IMAGE=conveyor-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && node --version && npm --version
