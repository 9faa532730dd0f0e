# One image holds both programs; docker-compose.yml picks one per service.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The build's stamps, for messageapi_build_info; .git is not copied, so go
# cannot stamp the commit itself:
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg REVISION=$(git rev-parse HEAD) .
ARG VERSION=unknown
ARG REVISION=unknown
RUN stamps="-X messageapi/cmd/internal/daemon.Version=${VERSION} -X messageapi/cmd/internal/daemon.Revision=${REVISION}" \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w $stamps" -o /out/api ./cmd/api \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w $stamps" -o /out/worker ./cmd/worker

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/api /out/worker /usr/local/bin/
USER nonroot:nonroot
EXPOSE 8080 6060
ENTRYPOINT ["/usr/local/bin/api"]
