# syntax=docker/dockerfile:1
#
# govsign: certificate authority and signing service on a PKCS#11 HSM.
#
#   docker build -t govsign .
#   docker volume create govsign-data
#   docker run --rm -v govsign-data:/var/lib/govsign \
#       -e GOVSIGN_PUBLIC_BASE_URL=https://pki.example.gov.vn govsign init      # once, idempotent
#   docker run -d --name govsign -p 8000:8000 -v govsign-data:/var/lib/govsign \
#       -e GOVSIGN_PUBLIC_BASE_URL=https://pki.example.gov.vn govsign            # serve
#
# Settings are GOVSIGN_* environment variables (see README.md); the ones that matter here:
#   GOVSIGN_DATA_DIR        /var/lib/govsign (a volume): SQLite database, SoftHSM2 configuration and
#                           tokens (softhsm2.conf, tokens/), the generated PIN (mode 0600), published
#                           files. Keep the volume: it holds the CA keys of the embedded default.
#   GOVSIGN_PKCS11_MODULE   left unset here on purpose. Unset means the embedded SoftHSM2 (installed
#                           below), whose token lives in the data volume. For a real HSM, mount or
#                           install its PKCS#11 library and set this to its path, together with
#                           GOVSIGN_HSM_TOKEN_LABEL and GOVSIGN_HSM_PIN_FILE (e.g. a mounted secret).
#   GOVSIGN_DATABASE_URL    unset = SQLite in the data volume; postgresql://USER@HOST:PORT/DB otherwise.
#   GOVSIGN_PUBLIC_BASE_URL written into every certificate (AIA, OCSP, CRL distribution points): set it
#                           to the URL relying parties reach, before `init`.
# A .env file mounted at /app/.env is read too.

############################################################################## builder
FROM python:3.11-slim-bookworm AS builder

# A compiler, for any dependency that has no binary wheel for this platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The venv sits at the same path in both stages, so its scripts' #! lines stay valid, and both
# stages share the base image, so its python symlink (/usr/local/bin/python3.11) resolves too.
RUN python -m venv /opt/govsign \
 && /opt/govsign/bin/pip install --upgrade pip setuptools wheel

WORKDIR /build
# README.md is the project's readme in pyproject.toml: the build needs it.
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN /opt/govsign/bin/pip install . \
 && /opt/govsign/bin/govsign --help >/dev/null

############################################################################## runtime
FROM python:3.11-slim-bookworm AS runtime

# softhsm2 brings libsofthsm2 (the PKCS#11 library of the embedded default) and softhsm2-util;
# opensc brings pkcs11-tool, to inspect tokens (see hsm/README.md); fonts-dejavu-core the TrueType font
# of the PDF verification reports and fonts-liberation2 the Times-metric Liberation Serif 2 that
# visible signature stamps embed (every Vietnamese letter; fonts-liberation 1.x lacks them). No
# compiler, no test tools.
RUN apt-get update \
 && apt-get install -y --no-install-recommends softhsm2 opensc fonts-dejavu-core fonts-liberation2 \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 govsign \
 && useradd --system --uid 10001 --gid govsign --no-create-home \
      --home-dir /var/lib/govsign --shell /usr/sbin/nologin govsign \
 && install -d -o govsign -g govsign -m 0700 /var/lib/govsign \
 && install -d -o root -g root -m 0755 /app

COPY --from=builder /opt/govsign /opt/govsign

ENV PATH=/opt/govsign/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GOVSIGN_DATA_DIR=/var/lib/govsign

# Created above owned by govsign with mode 0700, so a new named volume starts out that way too.
VOLUME ["/var/lib/govsign"]
WORKDIR /app
USER 10001:10001

EXPOSE 8000

# Liveness over plain HTTP with the standard library (the image has no curl). It checks port 8000:
# change it here too when serving on another port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["govsign"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
