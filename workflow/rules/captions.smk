# TEVAD's caption stream, for lap detectors with `captions: true` only: a VLM captions
# every segment of a feature part (its segments, so the two always align), then CLIP's
# text encoder embeds the captions into a one-crop shard that detect reads beside the
# features. Answers are cached per request (llm-cache): a rerun asks only for new ones.


from synthvad.llm.settings import answer_params


rule captions:
    input:
        unpack(caption_inputs),
    output:
        f"{R}/captions/captions-{{part}}.parquet",
    wildcard_constraints:
        part="real|synthetic",
    params:
        # Without the connection keys: they do not change answers (answer_params).
        config=canonical(answer_params(config["captions"])),
    log:
        f"{LOGS}/captions/{{part}}.log",
    benchmark:
        f"{BENCH}/captions/{{part}}.tsv",
    threads: 1
    resources:
        mem_mb=grows(2000),
        runtime=grows(240),
    conda:
        "../../envs/llm.yaml"
    script:
        STAGE


rule caption_features:
    input:
        captions=f"{R}/captions/captions-{{part}}.parquet",
        features=f"{FEATURES}/part-{{part}}.parquet",
    output:
        f"{R}/captions/embedded-{{part}}.parquet",
    wildcard_constraints:
        part="real|synthetic",
    params:
        config=sub_config("clip", "seed"),
    log:
        f"{LOGS}/caption_features/{{part}}.log",
    benchmark:
        f"{BENCH}/caption_features/{{part}}.tsv",
    threads: 1
    resources:
        mem_mb=grows(4000),
        runtime=grows(60),
    conda:
        "../../envs/torch.yaml"
    script:
        STAGE
