# A Selenium Grid node of docker-compose.yaml (one per egress route): the official Chromium node plus a Korean font,
# so the failure screenshots it takes of the portals' Korean pages show text, not boxes.
FROM selenium/node-chromium:latest
USER root
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/*
USER seluser
