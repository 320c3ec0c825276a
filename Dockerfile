FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir .
USER nobody
EXPOSE 8000
CMD ["mailroom", "serve", "--host", "0.0.0.0"]
