# flagsvc service image: build wheels in one stage, run as a non-root user in the next.
# The same image runs every role (compose.yaml): `flagsvc init` (migrations, its own
# step), `flagsvc serve` (the default) and `flagsvc scheduler`.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY constraints.txt pyproject.toml README.md ./
COPY sdk ./sdk
COPY flagsvc ./flagsvc
# Wheels for both distributions and every dependency, pinned by the lock file; the
# runtime stage installs from these alone (no compiler, no network there).
RUN pip wheel --no-cache-dir -c constraints.txt -w /wheels ./sdk .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLAGSVC_ENV=production FLAGSVC_MIGRATIONS=/srv/migrations
RUN useradd --system --uid 10001 --home-dir /srv --shell /usr/sbin/nologin flagsvc
WORKDIR /srv
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels flagsvc flagsvc-sdk \
    && rm -rf /wheels
COPY migrations ./migrations
COPY alembic.ini ./
# Read-only for the service user: it writes nothing but to PostgreSQL, Redis and stdout.
USER flagsvc
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
# FLAGSVC_ENV=production: the container refuses to start without DATABASE_URL and a
# real FLAGSVC_SECRET_KEY (32+ characters); `flagsvc check-config` lists what is wrong.
# Migrations run as their own step: `docker run ... IMAGE flagsvc init`.
CMD ["flagsvc", "serve", "--host", "0.0.0.0", "--port", "8000"]
