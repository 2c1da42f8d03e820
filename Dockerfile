# hotline-crawler: the CLI, with redis-server for the embedded default.
# Build: docker build -t hotline-crawler .   Run: docker run --rm hotline-crawler --help
#
# The base image is pinned by its exact tag. To pin the bytes too, append the digest that
# `docker buildx imagetools inspect python:3.11.14-slim-bookworm` prints, e.g.
#   FROM python:3.11.14-slim-bookworm@sha256:<digest>
FROM python:3.11.14-slim-bookworm

# redis-server backs the embedded queue when HOTLINE_REDIS_URL is not set.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/hotline-crawler
# The Python packages come from the lock files (scripts/lock), each file checked against its
# sha256, in a layer of their own that a change to the code does not rebuild.
COPY requirements/build.txt requirements/runtime.txt ./requirements/
RUN pip install --no-cache-dir --disable-pip-version-check --require-hashes -r requirements/build.txt \
    && pip install --no-cache-dir --disable-pip-version-check --require-hashes -r requirements/runtime.txt

COPY pyproject.toml README.md LICENSE NOTICE scrapy.cfg ./
COPY crawler ./crawler
COPY matchers ./matchers
COPY store ./store
COPY takedown ./takedown
COPY hotline ./hotline
# The project itself; everything it needs is installed above (pip check fails the build if not).
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation . \
    && pip check --disable-pip-version-check \
    && useradd --uid 10001 --create-home --shell /usr/sbin/nologin hotline \
    && install -d -m 0700 -o 10001 -g 10001 /home/hotline/data

# The data directory exists in the image, owned by the hotline user, so a named volume
# mounted on it (compose.yaml) starts with that owner and mode.
ENV HOTLINE_DATA_DIR=/home/hotline/data \
    PYTHONUNBUFFERED=1
USER 10001
WORKDIR /home/hotline
# `hotline serve --host 0.0.0.0` (the analyst console) listens here.
EXPOSE 8080
ENTRYPOINT ["hotline"]
CMD ["--help"]
