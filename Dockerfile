# The Airflow image for a deployment: the official image plus this project's pinned packages.
FROM apache/airflow:3.3.2-python3.11
# Chromium, its driver, Xvfb and a Korean font, for a worker that runs the browser itself (SELENIUM_REMOTE_URL
# unset) or `python -m coupang_sales.sign_in`: the browser runs headed on a virtual display the collector
# starts (the live portals refuse headless Chrome), and without fonts-noto-cjk the failure screenshots of the
# portals' Korean pages show boxes instead of text. The Grid node has its own (docker/selenium-node.Dockerfile).
USER root
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver xvfb fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/*
USER airflow
COPY requirements.txt /requirements.txt
RUN pip install --no-cache-dir -r /requirements.txt
