FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY gateway gateway
COPY workers workers
COPY store store
COPY hookline hookline
RUN pip install --no-cache-dir .
USER nobody
