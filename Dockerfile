# The articles' style: the official TensorFlow GPU image with Jupyter, then the team's needs.
FROM tensorflow/tensorflow:2.15.0-gpu-jupyter
ENV DEBIAN_FRONTEND=noninteractive TF_CPP_MIN_LOG_LEVEL=2
RUN apt-get update && apt-get install -y --no-install-recommends \
        git graphviz libgl1 && \
    rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r requirements.txt && \
    pip install --no-cache-dir "pandas>=2,<3" scikit-learn==1.3.2 pydot
WORKDIR /workspace
EXPOSE 8888
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--allow-root"]
