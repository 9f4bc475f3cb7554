"""OnTrack's front door: the ``ontrack`` command and the district configuration.

This package wires the stages (``features``, ``training``, ``serving``,
``monitoring``) together and holds none of their logic. Importing it turns off the
telemetry of every library we use: student data systems must not phone home.
"""

import os

# Set before mlflow, bentoml or evidently are imported anywhere in the process.
_TELEMETRY_OFF = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "BENTOML_DO_NOT_TRACK": "true",
    "EVIDENTLY_DISABLE_TELEMETRY": "1",
    "SCARF_NO_ANALYTICS": "true",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
# Progress bars of a library's internals (MLflow's artifact downloads) are noise on
# a command line that reports its own steps.
_QUIET = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
for _name, _value in {**_TELEMETRY_OFF, **_QUIET}.items():
    os.environ[_name] = _value
