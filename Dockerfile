# flagsvc service image: build wheels in one stage, run as a non-root user in the next.
FROM python:3.11-slim AS build
WORKDIR /src
COPY constraints.txt pyproject.toml README.md ./
COPY sdk ./sdk
COPY flagsvc ./flagsvc
RUN pip wheel --no-cache-dir -c constraints.txt -w /wheels ./sdk . \
    && pip wheel --no-cache-dir -c constraints.txt -w /wheels -r /dev/null

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --home /srv flagsvc
WORKDIR /srv
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels flagsvc flagsvc-sdk && rm -rf /wheels
COPY migrations ./migrations
COPY alembic.ini ./
USER flagsvc
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
# Migrations run as their own step: `docker run IMAGE flagsvc init`.
CMD ["flagsvc", "serve", "--host", "0.0.0.0", "--port", "8000"]
