# Stage 1: paired abnormal/normal descriptions (GV-VAD): offline template or an LLM.
from synthvad.llm.settings import answer_params


rule describe:
    output:
        f"{R}/descriptions.parquet",
    params:
        # Without the LLM connection keys: they do not change answers (answer_params).
        config=canonical(
            {**sub_config("classes", "seed"), "describe": answer_params(config["describe"])}
        ),
    log:
        f"{LOGS}/describe.log",
    benchmark:
        f"{BENCH}/describe.tsv",
    threads: 1
    resources:
        mem_mb=grows(1000),
        runtime=grows(60),
    conda:
        "../../envs/llm.yaml"
    script:
        STAGE
