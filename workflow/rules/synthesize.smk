# Stage 4: synthetic clips, each at synthetic/{generator}/{clip_id}.mp4 + .json.
#
# synthesize.clips_per_job 1: one job per clip (the wildcard rule below).
# N > 1: one rule per batch of N clips of one generator and method, defined in a loop, so
# that a model load is paid once per batch (Snakemake's group: would still start one Python
# process per clip). Params hold only what a clip is (synthvad.synthesize.jobs.rule_params),
# plus the stage a batch rule runs; a new N regroups clips into other jobs, which
# regenerates them (docs/generators.md#jobs).

if not SYNTHESIS_BATCHES:

    rule synthesize:
        input:
            unpack(lambda wildcards: synthesis_inputs([wildcards.clip_id])),
        output:
            videos=f"{R}/synthetic/{{generator}}/{{clip_id}}.mp4",
            sidecars=f"{R}/synthetic/{{generator}}/{{clip_id}}.json",
        wildcard_constraints:
            generator="|".join(synthesis.GENERATORS),
        params:
            config=lambda wildcards: synthesis.rule_params(config, wildcards.generator),
        log:
            f"{LOGS}/synthesize/{{generator}}/{{clip_id}}.log",
        benchmark:
            f"{BENCH}/synthesize/{{generator}}/{{clip_id}}.tsv",
        threads: lambda wildcards: synthesis.threads(config, wildcards.generator)
        resources:
            gpu=lambda wildcards: synthesis.resources(config, wildcards.generator, 1)["gpu"],
            mem_mb=grows_with(
                lambda wildcards: synthesis.resources(config, wildcards.generator, 1)["mem_mb"]
            ),
            runtime=grows_with(
                lambda wildcards: synthesis.resources(config, wildcards.generator, 1)["runtime"]
            ),
        conda:
            lambda wildcards: synthesis.conda_env(wildcards.generator)
        script:
            STAGE


for batch in SYNTHESIS_BATCHES:
    batch_resources = synthesis.resources(config, batch.generator, len(batch.clip_ids))

    rule:
        name:
            batch.rule
        input:
            unpack(lambda wildcards, ids=batch.clip_ids: synthesis_inputs(ids)),
        output:
            videos=[f"{R}/synthetic/{batch.generator}/{c}.mp4" for c in batch.clip_ids],
            sidecars=[f"{R}/synthetic/{batch.generator}/{c}.json" for c in batch.clip_ids],
        params:
            config=synthesis.rule_params(config, batch.generator),
            stage="synthesize",
        log:
            f"{LOGS}/synthesize/{batch.generator}/{batch.rule}.log",
        benchmark:
            f"{BENCH}/synthesize/{batch.generator}/{batch.rule}.tsv",
        threads: synthesis.threads(config, batch.generator)
        resources:
            gpu=batch_resources["gpu"],
            mem_mb=grows(batch_resources["mem_mb"]),
            runtime=grows(batch_resources["runtime"]),
        conda:
            synthesis.conda_env(batch.generator)
        script:
            STAGE
