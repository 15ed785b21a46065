"""Who may put what into a run: rules the run APIs apply to a request before a run is created.

Paths on the workers are for platform admins only, and a platform-level run (no project) may not
read a project's data. (Project roles are labeling.access; the registry's are models_registry.access.)
"""

from common.api import is_platform_admin
from common.exceptions import ServiceError
from training.ml.configs import available_configs, worker_path_fields
from training.services import run_inputs


def path_fields(kind: str) -> frozenset[str]:
    """The kind's config fields that name paths on the workers (every kind's for an unknown kind)."""
    config_class = available_configs().get(kind)
    return worker_path_fields(config_class) if config_class is not None else frozenset(run_inputs.WORKER_PATH_FIELDS)


def only_platform_admins_name_paths(
    user,
    values: dict,
    fields,
    *,
    prefix: str = "config.",
    instead: str = "a registered version, snapshot or dataset in inputs",
) -> None:
    """A path on a worker can point a job at any file there (another project's data, the platform's
    own files): only platform admins may name one; everyone else names what the platform registered."""
    named = sorted(name for name in fields if values.get(name) not in (None, ""))
    if named and not is_platform_admin(user):
        key = f"{prefix}{named[0]}"
        message = f"names a path on the workers; only platform admins may. Name {instead} instead."
        raise ServiceError(f"{key} {message}", errors={key: [message]}, status=403)


# Inputs that read a project's data: a run that names one belongs to that project (staff without its
# membership would otherwise read its prompts through a platform-level run's outputs).
PROJECT_INPUTS = ("dataset", "snapshot", "template", "templates", "cai_run", "constitution")


def no_project_data_without_a_project(user, inputs: dict) -> None:
    named = [name for name in PROJECT_INPUTS if inputs.get(name) is not None]
    if named and not is_platform_admin(user):
        key = f"inputs.{named[0]}"
        message = "reads a project's data; set project to the project it belongs to (you need its membership)"
        raise ServiceError(f"{key} {message}", errors={key: [message]})
