# One Dockerfile, one final stage per image (api, bridge, writer, consumer with salesctl,
# operator): they share the build stage, so every image carries binaries from one build.
# `make images` (scripts/images.sh) builds them with buildah, no daemon, nothing pulled:
#   buildah bud --isolation chroot --pull=never --layers --target api \
#     --build-arg BUILD_BASE=... --build-arg RUNTIME_BASE=... -t localhost/blackfriday/api:0.1.0 .
# The two bases are made here from Debian packages (scripts/images.sh, mmdebstrap): the build base
# has the compiler and the -dev packages; the runtime base only the shared libraries the programs
# link, without shell, package manager, docs or locales. `make push` sends the images to the
# registry (Zot on GCP, see zot-vm/README.md).
ARG BUILD_BASE=localhost/salespipeline/base-build:bookworm
ARG RUNTIME_BASE=localhost/salespipeline/base-runtime:bookworm

FROM ${BUILD_BASE} AS build
WORKDIR /src
COPY Makefile ./
COPY proto proto
COPY common common
COPY workers workers
COPY operator operator
# Debug info stays in the build stage; images get stripped binaries.
RUN make -j"$(nproc)" bins && strip --strip-unneeded build/bin/*

FROM ${RUNTIME_BASE} AS runtime
# The labels that change with each build (source, version, revision, created) are set by
# scripts/images.sh after the build: buildah's layer cache would keep stale ones.
LABEL org.opencontainers.image.vendor=salespipeline
# Non-root, as the pods' securityContext requires (runAsNonRoot with a numeric user).
USER 65532:65532
WORKDIR /home/nonroot

FROM runtime AS api
LABEL org.opencontainers.image.title=salespipeline-api
COPY --from=build /src/build/bin/api /usr/local/bin/api
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/api"]

FROM runtime AS bridge
LABEL org.opencontainers.image.title=salespipeline-bridge
COPY --from=build /src/build/bin/bridge /usr/local/bin/bridge
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/bridge"]

FROM runtime AS writer
LABEL org.opencontainers.image.title=salespipeline-writer
COPY --from=build /src/build/bin/writer /usr/local/bin/writer
EXPOSE 50051 9091
ENTRYPOINT ["/usr/local/bin/writer"]

FROM runtime AS consumer
LABEL org.opencontainers.image.title=salespipeline-consumer
COPY --from=build /src/build/bin/consumer /usr/local/bin/consumer
COPY --from=build /src/build/bin/salesctl /usr/local/bin/salesctl
EXPOSE 9092
ENTRYPOINT ["/usr/local/bin/consumer"]

FROM runtime AS operator
LABEL org.opencontainers.image.title=salespipeline-operator
COPY --from=build /src/build/bin/operator /usr/local/bin/operator
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/operator"]
