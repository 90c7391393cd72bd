"""Stage 4, video synthesis: turn a prompt (text, or text plus a retrieved frame) into a clip.

registry.py names every generator; each one's facts live with it: perturb.py (the offline,
rule-based renderer that needs no weights), cogvideox.py and wan.py (diffusers pipelines,
run by diffusion.py, whose checkpoints locate.py finds). spec.py is the shape of those
facts, base.py what every generator returns. run.py drives a job, jobs.py plans the
Snakemake jobs, gpu_plan.py estimates their GPU-hours.
"""
