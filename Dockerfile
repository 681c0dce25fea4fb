# The operator's image and the reference extractor's, for people with Docker:
# static binaries on distroless, running as non-root (distroless/static
# carries the CA roots the extractor needs for https and S3).
#   docker build -t ghcr.io/pybase/extraction-operator:v0.1.0 .                        (make docker-build)
#   docker build --target extractor -t ghcr.io/pybase/extraction-extractor:v0.1.0 .   (make docker-build-extractor)
# Without Docker, `make images` (hack/images) builds the same two programs, the
# same way, into image tarballs under bin/images, on an empty base instead of
# distroless and reproducibly (README, Images).
ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS builder
ARG TARGETOS
ARG TARGETARCH
WORKDIR /workspace
# Modules first, so that a change to the code reuses the download layer. The
# Pod contract's go.mod comes with them: go.mod replaces that module with
# ./api/podcontract, and go mod download reads the replacement's go.mod.
COPY go.mod go.sum ./
COPY api/podcontract/go.mod api/podcontract/
RUN go mod download
# .dockerignore lets in the Go sources only.
COPY . .
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w" -o /workspace/manager ./cmd && \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w" -o /workspace/extractor ./cmd/extractor

FROM gcr.io/distroless/static:nonroot AS extractor
WORKDIR /
COPY --from=builder /workspace/extractor /extractor
USER 65532:65532
ENTRYPOINT ["/extractor"]

# The operator comes last, so that a plain `docker build` builds it.
FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
