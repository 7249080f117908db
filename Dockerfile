# A hubbub node. Configure it with HUBBUB_* variables (see README.md).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hubbub ./hubbub
RUN pip install --no-cache-dir . && useradd --system --home /data hubbub \
    && mkdir -p /data && chown hubbub /data
USER hubbub
ENV HUBBUB_HOST=0.0.0.0 HUBBUB_PORT=8000 HUBBUB_DATA_DIR=/data
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=2)"
# HUBBUB_WORKERS=N runs N nodes on the port (needs PostgreSQL and Redis); SIGTERM drains.
CMD ["hubbub", "serve"]
