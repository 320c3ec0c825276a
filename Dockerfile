FROM python:3.11-slim
WORKDIR /app
# .dockerignore keeps databases, key files, .venv and .git out of the build context.
COPY . .
RUN pip install --no-cache-dir . \
    && mkdir -p /data && chown 65534:65534 /data && chmod 700 /data
# The embedded default (SQLite and its key file) lives in /data, writable by the runtime user;
# mount a volume there to keep it. docker-compose.yml points MAILROOM_DATABASE_URL at PostgreSQL.
ENV MAILROOM_DATABASE_URL=sqlite:////data/mailroom.db
VOLUME ["/data"]
USER 65534:65534
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["mailroom", "serve", "--host", "0.0.0.0"]
