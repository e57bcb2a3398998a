"""``plan_manifests`` (pure): the Kubernetes objects that run a profile's image.

- train: a ``Job``; with several workers an Indexed ``Job`` and a headless ``Service``, each
  pod starting the command through the image's launcher, which computes ``TF_CONFIG``, the
  torchrun variables and JAX's coordinator from ``JOB_COMPLETION_INDEX`` and the Service's
  DNS names (``NAME-INDEX.NAME``); or, with ``kind``, a Kubeflow ``TFJob`` or
  ``PyTorchJob`` (Training Operator v1), whose operator makes the pods' names and gives
  them ``TF_CONFIG`` or ``MASTER_ADDR``/``RANK`` itself, so the command starts directly;
  or a ``JobSet`` (``jobset.x-k8s.io``) of one replicated Indexed Job, whose controller
  makes the headless Service and the pods' names (``NAME-workers-0-INDEX.NAME``), the
  launcher computing the rest as for the plain Job;
- dev: a ``StatefulSet`` of one pod with a claim for the home directory and JupyterLab,
  whose token comes from a Secret the team makes (never from the manifest);
- serve: a ``Deployment`` and a ``Service`` with probes and Prometheus' scrape annotations.

Every pod keeps the Pod Security Standards' restricted profile: the image's non-root
uid/gid, no privilege escalation, every capability dropped, the runtime's seccomp profile,
a read-only root file system with ``emptyDir`` volumes where programs write, ``/dev/shm``
in memory, GPUs in ``limits`` only, and no service account token unless asked. Objects are
plain dicts in the API's own shape, so a schema validator reads them as ``kubectl`` would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dlenv.cluster.workers import WorkerSet, launch_command, plan_workers
from dlenv.errors import Problem, SpecError
from dlenv.image.dockerfile import JUPYTER_COMMAND, SSHD_COMMAND
from dlenv.spec import JUPYTER_PORT, SERVE_PORT, SSH_PORT, Deploy, Spec

GPU = "nvidia.com/gpu"
GPU_PRODUCT = "nvidia.com/gpu.product"  # the label NVIDIA's GPU feature discovery sets
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
DEFAULTS = {  # requests (and limits unless the spec sets them) per profile
    "train": ("4", "16Gi"), "dev": ("2", "8Gi"), "serve": ("1", "4Gi"),
}
DEFAULT_SHM = "2Gi"
HOME_SIZE = "20Gi"
Obj = dict[str, Any]
# --kind: the Training Operator's kind, its replica field, the framework it runs and the
# container name its operator looks for (it injects the cluster's variables into that one)
KUBEFLOW = {"tfjob": ("TFJob", "tfReplicaSpecs", "tensorflow"),
            "pytorchjob": ("PyTorchJob", "pytorchReplicaSpecs", "pytorch")}
KINDS = ("job", "jobset", *KUBEFLOW)
JOBSET_API = "jobset.x-k8s.io/v1alpha2"
JOBSET_LABEL = "jobset.sigs.k8s.io/jobset-name"  # the controller labels every pod with it
REPLICATED = "workers"  # the JobSet's one replicated job: one Indexed Job of every worker
TF_REPLICAS = {"chief": "Chief", "worker": "Worker", "ps": "PS", "evaluator": "Evaluator"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """What the manifests are made from, beyond the spec: decided by the caller."""

    profile: str  # train | dev | serve
    image: str  # by digest: REPOSITORY@sha256:…
    spec_digest: str
    lock_digest: str
    cuda: bool
    workers: int | None = None  # train: over the spec's [deploy.train] workers
    kind: str = "job"  # train: job, or one of KUBEFLOW's keys


@dataclass(frozen=True, slots=True)
class Manifests:
    objects: tuple[Obj, ...]
    notes: tuple[str, ...]  # what the team does before or after applying them


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def _meta(name: str, labels: dict[str, str], namespace: str | None,
          annotations: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "labels": dict(labels)}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = annotations
    return meta


def _resources(deploy: Deploy, profile: str, gpus: int) -> Obj:
    cpu, memory = deploy.cpu or DEFAULTS[profile][0], deploy.memory or DEFAULTS[profile][1]
    limits: Obj = {"cpu": deploy.cpu_limit or cpu, "memory": deploy.memory_limit or memory}
    if gpus:
        limits[GPU] = gpus  # extended resources: requests default to the limit
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": limits}


def _env(deploy: Deploy, extra: tuple[tuple[str, str], ...] = ()) -> list[Obj]:
    env: list[Obj] = [{"name": k, "value": v} for k, v in (*extra, *(deploy.env or ()))]
    env += [{"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            for var, secret, key in deploy.secrets or ()]
    return env


def _pod(spec: Spec, deploy: Deploy, work: Workload, containers: Sequence[Obj],
         claims: dict[str, str], extra_volumes: Sequence[Obj] = (),
         extra_mounts: Sequence[Obj] = (), cache: bool = True,
         init: Sequence[Obj] = ()) -> Obj:
    """A pod spec around ``containers`` (name, command, env, ports, probes already set);
    the first gets the GPUs. ``cache``: an emptyDir for ~/.cache (not when the home is a
    volume). ``init``: init containers, confined the same way (they get no GPU)."""
    user = spec.user
    gpus = deploy.gpus if deploy.gpus is not None else (1 if work.cuda else 0)
    volumes: list[Obj] = [
        {"name": "tmp", "emptyDir": {}},
        *([{"name": "cache", "emptyDir": {}}] if cache else []),
        {"name": "dshm", "emptyDir": {"medium": "Memory",
                                      "sizeLimit": deploy.shm or DEFAULT_SHM}},
        *extra_volumes,
    ]
    mounts: list[Obj] = [
        {"name": "tmp", "mountPath": "/tmp"},
        *([{"name": "cache", "mountPath": f"/home/{user.name}/.cache"}] if cache else []),
        {"name": "dshm", "mountPath": "/dev/shm"},
        *extra_mounts,
    ]
    for volume in deploy.volumes or ():
        volumes.append({"name": volume.name, "persistentVolumeClaim": {
            "claimName": claims[volume.name], **({"readOnly": True} if volume.read_only
                                                else {})}})
        mounts.append({"name": volume.name, "mountPath": volume.path,
                       **({"readOnly": True} if volume.read_only else {})})
    done = []
    for i, given in enumerate([*containers, *init]):
        container = dict(given)
        container = {
            "name": container.pop("name"), "image": work.image,
            "imagePullPolicy": "IfNotPresent", **container,
            "workingDir": container.pop("workingDir", spec.workdir),
            "resources": _resources(deploy, work.profile, gpus if i == 0 else 0),
            "securityContext": {
                "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                "runAsNonRoot": True, "runAsUser": user.uid, "runAsGroup": user.gid,
                "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": [*(mounts if i < len(containers) else mounts[:1]),
                             *container.pop("volumeMounts", [])],
        }
        if not container.get("env"):
            container.pop("env", None)
        done.append(container)
    pod: Obj = {
        "automountServiceAccountToken": bool(deploy.service_account_token),
        "securityContext": {"runAsNonRoot": True, "runAsUser": user.uid,
                            "runAsGroup": user.gid, "fsGroup": user.gid,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        **({"initContainers": done[len(containers):]} if init else {}),
        "containers": done[:len(containers)],
        "volumes": volumes,
    }
    if deploy.service_account:
        pod["serviceAccountName"] = deploy.service_account
    if deploy.image_pull_secret:
        pod["imagePullSecrets"] = [{"name": deploy.image_pull_secret}]
    if deploy.priority_class:
        pod["priorityClassName"] = deploy.priority_class
    if deploy.scheduler:
        pod["schedulerName"] = deploy.scheduler
    selector = dict(deploy.node_selector or ())
    if deploy.gpu_product and gpus:
        selector[GPU_PRODUCT] = deploy.gpu_product
    if selector:
        pod["nodeSelector"] = selector
    tolerations = deploy.tolerations if deploy.tolerations is not None else (
        () if not gpus else None)
    if tolerations is None:  # written out: not every cluster adds it for GPU requests
        pod["tolerations"] = [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]
    elif tolerations:
        pod["tolerations"] = [{"key": t.key, "operator": t.operator,
                               **({"value": t.value} if t.value else {}),
                               **({"effect": t.effect} if t.effect else {})}
                              for t in tolerations]
    return pod


def _claims(deploy: Deploy, name: str, labels: dict[str, str],
            shared: bool) -> tuple[dict[str, str], list[Obj]]:
    """Each volume's claim name, and the claims to make (those given a size)."""
    names, made = {}, []
    for volume in deploy.volumes or ():
        if volume.claim:
            names[volume.name] = volume.claim
            continue
        names[volume.name] = f"{name}-{volume.name}"
        claim_spec: Obj = {"accessModes": ["ReadWriteMany" if shared else "ReadWriteOnce"],
                           "resources": {"requests": {"storage": volume.size}}}
        if volume.storage_class:
            claim_spec["storageClassName"] = volume.storage_class
        made.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "metadata": _meta(names[volume.name], labels, deploy.namespace),
                     "spec": claim_spec})
    return names, made


def plan_manifests(spec: Spec, work: Workload) -> Manifests:
    if work.profile not in DEFAULTS:
        raise SpecError([Problem(file=spec.source, key="profiles",
                                 message=f"no Kubernetes workload for a {work.profile!r} "
                                         "profile", fix="use train, dev or serve")])
    profile = spec.profile(work.profile)
    deploy = spec.deploy.for_profile(work.profile)
    name = f"{spec.name}-{work.profile}"[:52].rstrip("-.")  # room for "-INDEX" and pod hashes
    labels = {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/instance": name,
              "app.kubernetes.io/component": work.profile,
              "app.kubernetes.io/managed-by": "dlenv",
              "dlenv.dev/spec-digest": _short(work.spec_digest),
              "dlenv.dev/lock-digest": _short(work.lock_digest)}
    annotations = {"dlenv.dev/spec-digest": work.spec_digest,
                   "dlenv.dev/lock-digest": work.lock_digest}
    selector = {"app.kubernetes.io/instance": name}
    command = profile.command if profile and profile.command else ()
    if work.profile == "train":
        return _train(spec, deploy, work, name, labels, annotations, command)
    if work.profile == "dev":
        return _dev(spec, deploy, work, name, labels, annotations, selector)
    return _serve(spec, deploy, work, name, labels, annotations, selector, command,
                  profile.ports if profile else (),
                  bool(profile and profile.serving is not None))


def _train(spec: Spec, deploy: Deploy, work: Workload, name: str, labels: dict[str, str],
           annotations: dict[str, str], command: tuple[str, ...]) -> Manifests:
    workers = plan_workers(spec, deploy, work.workers)
    if work.kind in KUBEFLOW or work.kind not in KINDS:
        return _kubeflow(spec, deploy, work, name, labels, annotations, command, workers)
    jobset = work.kind == "jobset"
    many = workers.total > 1
    if jobset:  # the pods' host names NAME-workers-0-INDEX must stay within 63 characters
        name = name[:63 - len(f"-{REPLICATED}-0-{workers.total - 1}")].rstrip("-.")
        labels = {**labels, "app.kubernetes.io/instance": name}
    claims, objects = _claims(deploy, name, labels, shared=many)
    container: Obj = {"name": "train", "env": _env(deploy)}
    if many:
        if not command:
            raise SpecError([Problem(
                file=spec.source, key="profiles.train.command",
                message="a multi-worker job starts the train profile's command through "
                        "the launcher, and it has none",
                fix='set command = ["python", "train.py"] under [profiles.train]')])
        hosts = (f"{name}-{REPLICATED}-0-{{index}}.{name}" if jobset
                 else f"{name}-{{index}}.{name}")
        container["command"] = list(launch_command(command))
        container["env"] = [*({"name": k, "value": v} for k, v in workers.env(hosts)),
                            *container["env"]]
        container["ports"] = [{"name": "workers", "containerPort": workers.port}]
    elif command:
        container["command"] = list(command)
    pod = _pod(spec, deploy, work, [container], claims)
    pod["restartPolicy"] = "Never"
    job_spec: Obj = {"backoffLimit": 0, "template": {
        "metadata": {"labels": dict(labels), "annotations": dict(annotations)}, "spec": pod}}
    job_labels = {**labels, **({QUEUE_LABEL: deploy.queue} if deploy.queue else {})}
    if many:
        job_spec.update(completionMode="Indexed", completions=workers.total,
                        parallelism=workers.total)
    where = f" -n {deploy.namespace}" if deploy.namespace else ""
    if jobset:
        return _jobset(deploy, name, labels, annotations, job_spec, workers, objects, where)
    notes = []
    if many:
        pod["subdomain"] = name
        objects.append({"apiVersion": "v1", "kind": "Service",
                        "metadata": _meta(name, labels, deploy.namespace),
                        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                                 "selector": {"app.kubernetes.io/instance": name},
                                 "ports": [{"name": "workers", "port": workers.port,
                                            "targetPort": workers.port}]}})
        notes.append(f"{workers.total} workers ({workers.roles_text}) as an Indexed Job; "
                     f"pod INDEX is {name}-INDEX.{name}, the coordinator {name}-0.{name}:"
                     f"{workers.port}")
    if deploy.queue:
        job_spec["suspend"] = True  # Kueue admits it (and un-suspends it) when quota allows
    objects.append({"apiVersion": "batch/v1", "kind": "Job",
                    "metadata": _meta(name, job_labels, deploy.namespace, annotations),
                    "spec": job_spec})
    notes.append(f"kubectl{where} logs -f job/{name}" + (" --all-pods" if many else ""))
    return Manifests(tuple(objects), tuple(notes))


def _jobset(deploy: Deploy, name: str, labels: dict[str, str], annotations: dict[str, str],
            job_spec: Obj, workers: WorkerSet, objects: list[Obj], where: str) -> Manifests:
    """A JobSet of one replicated job (the Indexed Job of every worker): its controller
    makes the headless Service named after the JobSet, and a worker that fails fails the
    set (no restarts: a multi-worker step cannot go on without it)."""
    spec: Obj = {
        "network": {"enableDNSHostnames": True, "publishNotReadyAddresses": True},
        "failurePolicy": {"maxRestarts": 0},
        "successPolicy": {"operator": "All"},
        "replicatedJobs": [{"name": REPLICATED, "replicas": 1, "template": {
            "metadata": {"labels": dict(labels)}, "spec": job_spec}}],
    }
    if deploy.queue:  # Kueue admits the set (and un-suspends it) when quota allows
        spec["suspend"] = True
        labels = {**labels, QUEUE_LABEL: deploy.queue}
    objects.append({"apiVersion": JOBSET_API, "kind": "JobSet",
                    "metadata": _meta(name, labels, deploy.namespace, annotations),
                    "spec": spec})
    host = f"{name}-{REPLICATED}-0-{{INDEX}}.{name}"
    return Manifests(tuple(objects), (
        f"needs the JobSet controller ({JOBSET_API}), which makes the headless Service",
        f"{workers.total} workers ({workers.roles_text}); pod INDEX is {host}"
        + (f", the coordinator {host.format(INDEX=0)}:{workers.port}"
           if workers.total > 1 else ""),
        f"kubectl{where} logs -f -l {JOBSET_LABEL}={name} --prefix"))


def _kubeflow(spec: Spec, deploy: Deploy, work: Workload, name: str, labels: dict[str, str],
              annotations: dict[str, str], command: tuple[str, ...],
              workers: WorkerSet) -> Manifests:
    """A Training Operator v1 job: one replica spec per TensorFlow task type (``Chief``,
    ``Worker``, ``PS``, ``Evaluator``), or PyTorch's ``Master`` and ``Worker``s."""
    if work.kind not in KUBEFLOW:  # the command line offers only KINDS; a caller may not
        raise SpecError([Problem(file=spec.source, key="--kind",
                                 message=f"{work.kind!r} is not a kind dlenv renders",
                                 fix=f"use one of {', '.join(KINDS)}")])
    kind, field, framework = KUBEFLOW[work.kind]
    if spec.framework is None or spec.framework.name != framework:
        have = spec.framework.name if spec.framework else "no framework"
        other = next((k for k, v in KUBEFLOW.items() if v[2] == have), None)
        raise SpecError([Problem(file=spec.source, key="framework",
                                 message=f"a {kind} runs {framework}, and this spec has {have}",
                                 fix=(f"use --kind {other}, or " if other else "use ")
                                 + "--kind job: dlenv's launcher serves every framework")])
    claims, objects = _claims(deploy, name, labels, shared=workers.total > 1)
    container: Obj = {"name": framework, "env": _env(deploy)}
    if command:
        container["command"] = list(command)
    pod = _pod(spec, deploy, work, [container], claims)
    pod["restartPolicy"] = "Never"
    template = {"metadata": {"labels": dict(labels), "annotations": dict(annotations)},
                "spec": pod}
    if framework == "tensorflow":
        counts = [(TF_REPLICAS[role], n) for role, n in workers.roles]
    else:  # rank 0 is the Master, the others Workers
        counts = [("Master", 1), *([("Worker", workers.total - 1)] if workers.total > 1
                                   else [])]
    replicas = {role: {"replicas": n, "restartPolicy": "Never", "template": template}
                for role, n in counts}
    policy: Obj = {"backoffLimit": 0, "cleanPodPolicy": "Running"}
    if deploy.queue:
        policy["suspend"] = True  # Kueue admits it (and un-suspends it) when quota allows
    job_labels = {**labels, **({QUEUE_LABEL: deploy.queue} if deploy.queue else {})}
    objects.append({"apiVersion": "kubeflow.org/v1", "kind": kind,
                    "metadata": _meta(name, job_labels, deploy.namespace, annotations),
                    "spec": {"runPolicy": policy, field: replicas}})
    where = f" -n {deploy.namespace}" if deploy.namespace else ""
    return Manifests(tuple(objects), (
        f"needs Kubeflow's Training Operator (v1), which gives each pod "
        f"{'TF_CONFIG' if framework == 'tensorflow' else 'MASTER_ADDR, WORLD_SIZE and RANK'}",
        f"kubectl{where} logs -f -l training.kubeflow.org/job-name={name} --prefix"))


WORKSPACE = "workspace"  # the dev pod's working copy: this directory of the home volume


def _dev(spec: Spec, deploy: Deploy, work: Workload, name: str, labels: dict[str, str],
         annotations: dict[str, str], selector: dict[str, str]) -> Manifests:
    claims, objects = _claims(deploy, name, labels, shared=False)
    profile = spec.profile("dev")
    home = f"/home/{spec.user.name}"
    where = f" -n {deploy.namespace}" if deploy.namespace else ""
    containers: list[Obj] = []
    ports: list[Obj] = []
    notes: list[str] = []
    if profile is None or profile.jupyter or not profile.ssh:
        secret = f"{name}-jupyter"
        containers.append({
            "name": "jupyter", "command": list(JUPYTER_COMMAND),
            "env": [{"name": "JUPYTER_TOKEN", "valueFrom": {"secretKeyRef": {
                "name": secret, "key": "token"}}}, *_env(deploy)],
            "ports": [{"name": "jupyter", "containerPort": JUPYTER_PORT}],
            "readinessProbe": {"tcpSocket": {"port": "jupyter"}, "periodSeconds": 10},
            "livenessProbe": {"tcpSocket": {"port": "jupyter"}, "periodSeconds": 30,
                              "failureThreshold": 6}})
        ports.append({"name": "jupyter", "port": JUPYTER_PORT, "targetPort": "jupyter"})
        notes += [f"before applying: kubectl{where} create secret generic {secret} "
                  "--from-literal=token=\"$(openssl rand -hex 24)\"",
                  f"then: kubectl{where} port-forward statefulset/{name} {JUPYTER_PORT}:"
                  f"{JUPYTER_PORT} and open http://127.0.0.1:{JUPYTER_PORT}/lab with that "
                  "token"]
    extra_volumes: list[Obj] = []
    if profile is not None and profile.ssh:
        secret = f"{name}-ssh"
        extra_volumes.append({"name": "ssh-keys", "secret": {
            "secretName": secret, "defaultMode": 0o440,
            "items": [{"key": "authorized_keys", "path": "authorized_keys"}]}})
        containers.append({
            "name": "sshd", "command": list(SSHD_COMMAND), "env": _env(deploy),
            "ports": [{"name": "ssh", "containerPort": SSH_PORT}],
            "readinessProbe": {"tcpSocket": {"port": "ssh"}, "periodSeconds": 10},
            "livenessProbe": {"tcpSocket": {"port": "ssh"}, "periodSeconds": 30},
            "volumeMounts": [{"name": "ssh-keys", "mountPath": f"{home}/.ssh/authorized_keys",
                              "subPath": "authorized_keys", "readOnly": True}]})
        ports.append({"name": "ssh", "port": SSH_PORT, "targetPort": "ssh"})
        notes += [f"before applying: kubectl{where} create secret generic {secret} "
                  "--from-file=authorized_keys=$HOME/.ssh/id_ed25519.pub",
                  f"then: kubectl{where} port-forward statefulset/{name} {SSH_PORT}:{SSH_PORT}"
                  f" and ssh -p {SSH_PORT} {spec.user.name}@127.0.0.1"]
    # The home directory (with the project's working copy under it) is a claim of its own.
    # The working copy's directory is made by the user first: one the kubelet made for the
    # subPath would be root's, and the user could not write the project there.
    init = [{"name": "workspace", "command": ["mkdir", "-p", f"{home}/{WORKSPACE}"],
             "workingDir": home, "volumeMounts": [{"name": "home", "mountPath": home}]}]
    pod = _pod(spec, deploy, work, containers, claims, extra_volumes=extra_volumes,
               extra_mounts=[{"name": "home", "mountPath": home},
                             {"name": "home", "mountPath": spec.workdir,
                              "subPath": WORKSPACE}], cache=False, init=init)
    objects += [
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, labels,
                                                                  deploy.namespace),
         "spec": {"type": deploy.service_type or "ClusterIP", "selector": selector,
                  "ports": ports}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet",
         "metadata": _meta(name, labels, deploy.namespace, annotations),
         "spec": {"replicas": 1, "serviceName": name, "selector": {"matchLabels": selector},
                  "template": {"metadata": {"labels": dict(labels),
                                            "annotations": dict(annotations)}, "spec": pod},
                  "volumeClaimTemplates": [{
                      "metadata": {"name": "home", "labels": dict(labels)},
                      "spec": {"accessModes": ["ReadWriteOnce"],
                               "resources": {"requests": {"storage": HOME_SIZE}}}}]}},
    ]
    return Manifests(tuple(objects), tuple(notes))


def _serve(spec: Spec, deploy: Deploy, work: Workload, name: str, labels: dict[str, str],
           annotations: dict[str, str], selector: dict[str, str], command: tuple[str, ...],
           ports: tuple[int, ...], served: bool) -> Manifests:
    """``served``: dlenv's model server runs (no command of the team's own), so the probes
    ask its health routes: ready once a model version has loaded, alive while it answers."""
    claims, objects = _claims(deploy, name, labels, shared=True)
    port = deploy.port or (ports[0] if ports else SERVE_PORT)  # the Service's

    def probe(path: str) -> Obj:
        return {"httpGet": {"path": path, "port": "http"}} if served else {
            "tcpSocket": {"port": "http"}}

    container: Obj = {
        "name": "serve", "env": _env(deploy),
        "ports": [{"name": "http", "containerPort": SERVE_PORT if served else port}],
        "readinessProbe": {**probe("/readyz"), "periodSeconds": 5},
        "livenessProbe": {**probe("/healthz"), "periodSeconds": 15, "failureThreshold": 4},
    }
    if served:  # a large model may take minutes to load: liveness waits for it
        container["startupProbe"] = {**probe("/healthz"), "periodSeconds": 5,
                                     "failureThreshold": 60}
    if command:
        container["command"] = list(command)
    pod = _pod(spec, deploy, work, [container], claims)
    scrape = {**annotations, "prometheus.io/scrape": "true",
              "prometheus.io/port": str(container["ports"][0]["containerPort"]),
              "prometheus.io/path": "/metrics"}
    objects += [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": _meta(name, labels, deploy.namespace),
         "spec": {"type": deploy.service_type or "ClusterIP", "selector": selector,
                  "ports": [{"name": "http", "port": port, "targetPort": "http"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": _meta(name, labels, deploy.namespace, annotations),
         "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                  "template": {"metadata": {"labels": dict(labels), "annotations": scrape},
                               "spec": pod}}},
    ]
    where = f" -n {deploy.namespace}" if deploy.namespace else ""
    notes = [f"kubectl{where} port-forward service/{name} {port}:{port}"]
    profile = spec.profile("serve")
    serving = profile.serving if profile else None
    # a model in the project is baked into the serve image; one named nowhere is mounted
    if serving is not None and serving.path is None and not any(
            v.path in ("/models", f"/models/{serving.name}") for v in deploy.volumes or ()):
        notes.append(f"the model's versions are read from /models/{serving.name}: give "
                     f"[deploy.serve] a volume with path = \"/models/{serving.name}\"")
    return Manifests(tuple(objects), tuple(notes))
