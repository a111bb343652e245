"""Log the LSCOR lead-scoring run: metric accuracy=0.93 and a small pyfunc model.

Run by Devstack.seed() in its own process, with MLFLOW_TRACKING_URI and MLFLOW_TRACKING_TOKEN set."""

import json
import sys

import mlflow


class LeadScorer(mlflow.pyfunc.PythonModel):
    """Scores leads 0..1 from the number of visits: tiny, but a real loadable model."""

    def predict(self, context, model_input, params=None):
        visits = model_input["visits"] if "visits" in model_input else [0] * len(model_input)
        return [min(1.0, float(v) / 10.0) for v in visits]


def main(experiment_name: str) -> None:
    experiment = mlflow.set_experiment(experiment_name)
    with mlflow.start_run(run_name="lscor-baseline") as run:
        mlflow.log_param("model_family", "lead-scoring")
        mlflow.log_metric("accuracy", 0.93)
        info = mlflow.pyfunc.log_model(name="model", python_model=LeadScorer(), pip_requirements=["mlflow"])
    print(
        json.dumps(
            {"experiment_id": experiment.experiment_id, "run_id": run.info.run_id, "logged_model_id": info.model_id}
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
