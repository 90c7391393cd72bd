# Stage 3: one prompt per planned clip (PA-VAD refinement by template or a VLM,
# GV-VAD descriptions): prompts.parquet to read, and prompts/<clip_id>.json per clip for
# stage 4. A checkpoint, so that Snakemake re-evaluates the DAG after it runs: a clip
# whose prompt file came out byte-identical keeps its video (input checksum), and adding
# clips makes only the new ones. Dry runs cannot know that yet and list every clip.
from synthvad.llm.settings import answer_params


checkpoint refine:
    input:
        unpack(refine_inputs),
    output:
        table=f"{R}/prompts.parquet",
        # A folder, not 5,000 declared files: Snakemake matches a requested file against
        # every declared output of a rule, so listing them made `-n` quadratic in clips.
        clips=directory(f"{R}/prompts"),
    params:
        # Without the VLM connection keys: they do not change answers (answer_params).
        config=canonical(answer_params(config["refine"])),
        methods=METHODS,
        clip_ids=CLIPS,
    log:
        f"{LOGS}/refine.log",
    benchmark:
        f"{BENCH}/refine.tsv",
    threads: 1
    resources:
        mem_mb=grows(1000),
        runtime=grows(60),
    conda:
        "../../envs/llm.yaml"
    script:
        STAGE
