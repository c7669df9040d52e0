# The smtpgate tool image: smtpgate installed from this checkout on the
# locally built Debian base (fixtures/build-base.sh, no registry needed),
# non-root by default. It is the job image of the GitLab component's docker
# and dind jobs, and smtpgate's default helper image (it has python3).
#
#   ./dev tool-image          builds it as smtpgate:<version> and smtpgate:latest
#   docker build -t smtpgate:0.1.0 .    the same by hand (BASE= another Debian/Ubuntu image)
#
# A build-ca.crt next to this file (./dev copies the host's CA bundle there)
# is used for pip's TLS when present: for build machines behind a TLS proxy.
ARG BASE=smtpgate-fixture/debian-base:bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
# the glob lets the optional CA bundle be absent
COPY pyproject.toml README.md CHANGELOG.md build-ca.cr[t] /src/
COPY smtpgate /src/smtpgate
RUN if [ -f /src/build-ca.crt ]; then export PIP_CERT=/src/build-ca.crt; fi \
 && python3 -m venv /opt/smtpgate \
 && /opt/smtpgate/bin/pip install --no-cache-dir --disable-pip-version-check --quiet /src \
 && rm -rf /src \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/smtpgate smtpgate \
 && /opt/smtpgate/bin/smtpgate --version
ENV PATH=/opt/smtpgate/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /home/smtpgate
ENTRYPOINT ["smtpgate"]
CMD ["--help"]
