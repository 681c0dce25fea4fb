# The operator's image: a static binary on distroless, running as non-root.
#   docker build -t ghcr.io/pybase/extraction-operator:v0.1.0 .   (make docker-build)
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
    go build -trimpath -ldflags "-s -w" -o /workspace/manager ./cmd

FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
