# One Dockerfile, one final stage per component (api, bridge, writer, consumer, operator,
# salesctl): they share the build stage, so every image carries binaries from one build.
#   docker build --target api -t $REGISTRY/api:$VERSION .
# scripts/images.sh builds and pushes all of them to the Zot registry (see zot-vm/README.md).
FROM debian:bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential pkg-config protobuf-c-compiler libcurl4-openssl-dev libcjson-dev \
      libyaml-dev libprotobuf-c-dev librdkafka-dev libhiredis-dev libmicrohttpd-dev \
      libgrpc-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY proto proto
COPY common common
COPY workers workers
COPY operator operator
RUN make -j"$(nproc)" bins

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates libcurl4 libcjson1 libyaml-0-2 libprotobuf-c1 librdkafka1 \
      libhiredis0.14 libmicrohttpd12 libgrpc29 libssl3 \
    && rm -rf /var/lib/apt/lists/*
# Non-root, as the pods' securityContext requires (runAsNonRoot with a numeric user).
USER 65532:65532

FROM runtime AS api
COPY --from=build /src/build/bin/api /usr/local/bin/api
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/api"]

FROM runtime AS bridge
COPY --from=build /src/build/bin/bridge /usr/local/bin/bridge
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/bridge"]

FROM runtime AS writer
COPY --from=build /src/build/bin/writer /usr/local/bin/writer
EXPOSE 50051 9091
ENTRYPOINT ["/usr/local/bin/writer"]

FROM runtime AS consumer
COPY --from=build /src/build/bin/consumer /usr/local/bin/consumer
COPY --from=build /src/build/bin/salesctl /usr/local/bin/salesctl
EXPOSE 9092
ENTRYPOINT ["/usr/local/bin/consumer"]

FROM runtime AS operator
COPY --from=build /src/build/bin/operator /usr/local/bin/operator
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/operator"]
