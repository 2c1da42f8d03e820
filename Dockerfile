# hotline-crawler: the CLI, with redis-server for the embedded default.
# Build: docker build -t hotline-crawler .   Run: docker run --rm hotline-crawler --help
FROM python:3.11-slim-bookworm

# redis-server backs the embedded queue when HOTLINE_REDIS_URL is not set.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/hotline-crawler
COPY pyproject.toml README.md scrapy.cfg ./
COPY crawler ./crawler
COPY matchers ./matchers
COPY store ./store
COPY takedown ./takedown
COPY hotline ./hotline
RUN pip install --no-cache-dir . \
    && useradd --uid 10001 --create-home --shell /usr/sbin/nologin hotline

ENV HOTLINE_DATA_DIR=/home/hotline/data \
    PYTHONUNBUFFERED=1
USER 10001
WORKDIR /home/hotline
# `hotline serve --host 0.0.0.0` (the analyst console) listens here.
EXPOSE 8080
ENTRYPOINT ["hotline"]
CMD ["--help"]
