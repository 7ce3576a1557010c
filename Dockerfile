# boxoffice in a container: build stage with the Rust toolchain, then a
# slim runtime image that runs as a non-root user with its data directory on
# a volume. Build: docker build -t boxoffice .
# Run:   docker run -p 8080:8080 -v boxoffice-data:/var/lib/boxoffice/data \
#          -e BOXOFFICE__AUTH__ADMIN_TOKEN=... boxoffice
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin boxoffice

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/boxoffice boxoffice \
 && mkdir -p /var/lib/boxoffice/data \
 && chown -R boxoffice:boxoffice /var/lib/boxoffice
COPY --from=build /src/target/release/boxoffice /usr/local/bin/boxoffice
COPY --from=build /src/config.toml /etc/boxoffice/config.toml
USER boxoffice
WORKDIR /var/lib/boxoffice
# Listen on every interface inside the container; keep the data on the volume.
ENV BOXOFFICE__SERVER__HOST=0.0.0.0 \
    BOXOFFICE__SNAPSHOT__DIR=/var/lib/boxoffice/data
VOLUME ["/var/lib/boxoffice/data"]
EXPOSE 8080
# SIGTERM: finish in-flight requests, write a final snapshot, exit 0. Give it
# longer than server.shutdown_timeout_secs (docker stop -t 30).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/boxoffice", "--config", "/etc/boxoffice/config.toml"]
