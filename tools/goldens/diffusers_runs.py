#!/usr/bin/python3
"""Whole sampling runs of diffusers' own schedulers, for package sampler.

Run from the repository root:

    nice -n 19 /usr/bin/python3 tools/goldens/diffusers_runs.py

It loads diffusers' scheduler files unmodified (tools/goldens/diffusers_stub.py
explains how, and which commit) and, for each case below, builds the
scheduler from a scheduler_config.json-style dict as diffusers' from_config
does (only the keys the dict holds; the class's defaults for the rest),
then runs the loop of a diffusers pipeline with the test dummy model of
diffusers' scheduler tests, model(x, t) = x * t / (t + 1):

  * from noise: latents = torch.randn(shape, generator) * init_noise_sigma,
    then per timestep model(scale_model_input(latents, t), t) and
    step(..., generator=generator) where step takes a generator;
  * img2img (strength > 0): noise = torch.randn(shape, generator),
    add_noise(x0, noise, timesteps[t_start]) with t_start = n - int(n *
    strength), x0 = arange(size)/size - 0.5, then the steps from t_start.

FlowMatchEulerDiscreteScheduler (rectified flow) has no init_noise_sigma
and no scale_model_input: the loop starts from the noise itself and calls
the model on the sample, and img2img noises with scale_noise. With
use_dynamic_shifting, a case gives image_seq_len and mu comes from
calculate_shift, taken from diffusers' FLUX pipeline file (the function's
source, extracted with ast and run unmodified), as the pipelines compute it.

It writes sampler/testdata/diffusers_runs.json: per case the config, the
sampler asked for (when it is not the config's _class_name), the steps,
seed and strength, the timesteps of the run and the final sample.
sampler/diffusers_runs_test.go reads it; tests never write it.
"""
import ast
import inspect
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diffusers_stub  # noqa: E402

OUT = os.path.join("sampler", "testdata", "diffusers_runs.json")
SHAPE = (2, 4, 4, 4)

MODULES = ["ddpm", "ddim", "pndm", "euler_discrete", "euler_ancestral_discrete", "dpmsolver_multistep", "unipc_multistep",
           "flow_match_euler_discrete"]
mods = dict(zip(MODULES, diffusers_stub.load(*MODULES)))
CLASSES = {
    "DDPMScheduler": mods["ddpm"].DDPMScheduler,
    "DDIMScheduler": mods["ddim"].DDIMScheduler,
    "PNDMScheduler": mods["pndm"].PNDMScheduler,
    "EulerDiscreteScheduler": mods["euler_discrete"].EulerDiscreteScheduler,
    "EulerAncestralDiscreteScheduler": mods["euler_ancestral_discrete"].EulerAncestralDiscreteScheduler,
    "DPMSolverMultistepScheduler": mods["dpmsolver_multistep"].DPMSolverMultistepScheduler,
    "UniPCMultistepScheduler": mods["unipc_multistep"].UniPCMultistepScheduler,
    "FlowMatchEulerDiscreteScheduler": mods["flow_match_euler_discrete"].FlowMatchEulerDiscreteScheduler,
}


def pipeline_function(path, name):
    """Returns the function name defined at top level in diffusers' file path (source run unmodified)."""
    src = diffusers_stub.show(path)
    for node in ast.parse(src).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            scope = {}
            exec(compile(ast.Module(body=[node], type_ignores=[]), path, "exec"), scope)
            return scope[name]
    raise SystemExit(f"{name} not found in {path}")


calculate_shift = pipeline_function("src/diffusers/pipelines/flux/pipeline_flux.py", "calculate_shift")

SD = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
SD15 = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012, "beta_schedule": "scaled_linear",
        "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
        "steps_offset": 1, "trained_betas": None, "clip_sample": False}
COS = {"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2"}


def cfg(cls, base=None, **kw):
    d = {"_class_name": cls}
    d.update(base or {})
    d.update(kw)
    return d


CASES = [
    # DDPM: the previous timestep is the next entry of the list.
    dict(name="ddpm_linspace_10", config=cfg("DDPMScheduler", timestep_spacing="linspace"), steps=10, seed=0),
    dict(name="ddpm_trailing_10", config=cfg("DDPMScheduler", timestep_spacing="trailing"), steps=10, seed=1),
    dict(name="ddpm_sd_linspace_50", config=cfg("DDPMScheduler", SD, timestep_spacing="linspace", clip_sample=False), steps=50, seed=2),
    dict(name="ddpm_sd_leading_20", config=cfg("DDPMScheduler", SD, steps_offset=1, clip_sample=False), steps=20, seed=3),
    dict(name="ddpm_v_trailing_13", config=cfg("DDPMScheduler", SD, timestep_spacing="trailing", prediction_type="v_prediction",
                                               variance_type="fixed_large", clip_sample=False), steps=13, seed=4),
    # PNDM (PLMS, skip_prk_steps), SD 1.5's shipped configuration.
    dict(name="pndm_sd15_20", config=SD15, steps=20, seed=5),
    dict(name="pndm_sd15_50", config=SD15, steps=50, seed=6),
    dict(name="pndm_v_linspace_10", config=cfg("PNDMScheduler", SD, skip_prk_steps=True, prediction_type="v_prediction",
                                               timestep_spacing="linspace"), steps=10, seed=7),
    dict(name="pndm_trailing_alpha1_7", config=cfg("PNDMScheduler", skip_prk_steps=True, set_alpha_to_one=True,
                                                   timestep_spacing="trailing"), steps=7, seed=8),
    dict(name="pndm_2", config=SD15, steps=2, seed=9),
    dict(name="pndm_1", config=SD15, steps=1, seed=10),
    dict(name="pndm_img2img", config=SD15, steps=20, seed=11, strength=0.6),
    # F-PNDM: Runge-Kutta warm-up (skip_prk_steps false, the class default).
    dict(name="pndm_prk_10", config=cfg("PNDMScheduler", SD, steps_offset=1), steps=10, seed=36),
    dict(name="pndm_prk_v_linspace_4", config=cfg("PNDMScheduler", prediction_type="v_prediction", timestep_spacing="linspace"),
         steps=4, seed=37),
    dict(name="pndm_prk_trailing_alpha1_25", config=cfg("PNDMScheduler", SD, skip_prk_steps=False, set_alpha_to_one=True,
                                                        timestep_spacing="trailing"), steps=25, seed=38),
    # UniPC multistep.
    dict(name="unipc_sd_20", config=cfg("UniPCMultistepScheduler", SD), steps=20, seed=12),
    dict(name="unipc_bh1_o3_sigmamin_15", config=cfg("UniPCMultistepScheduler", SD, solver_type="bh1", solver_order=3,
                                                     final_sigmas_type="sigma_min"), steps=15, seed=13),
    dict(name="unipc_o1_10", config=cfg("UniPCMultistepScheduler", SD, solver_order=1), steps=10, seed=14),
    dict(name="unipc_o3_karras_v_12", config=cfg("UniPCMultistepScheduler", SD, solver_order=3, use_karras_sigmas=True,
                                                 prediction_type="v_prediction"), steps=12, seed=15),
    dict(name="unipc_o3_trailing_nolof_10", config=cfg("UniPCMultistepScheduler", SD, solver_order=3, timestep_spacing="trailing",
                                                       lower_order_final=False, final_sigmas_type="sigma_min"), steps=10, seed=16),
    dict(name="unipc_disable_corrector", config=cfg("UniPCMultistepScheduler", SD, disable_corrector=[0, 3]), steps=10, seed=17),
    dict(name="unipc_img2img", config=cfg("UniPCMultistepScheduler", SD, solver_order=3), steps=20, seed=18, strength=0.5),
    dict(name="unipc_threshold_sample_leading", config=cfg("UniPCMultistepScheduler", thresholding=True, dynamic_thresholding_ratio=0.9,
                                                           sample_max_value=1.5, prediction_type="sample", timestep_spacing="leading",
                                                           steps_offset=1), steps=10, seed=19),
    dict(name="unipc_karras_bounds_sigmamin", config=cfg("UniPCMultistepScheduler", SD, use_karras_sigmas=True, sigma_min=0.1,
                                                         sigma_max=10.0, final_sigmas_type="sigma_min"), steps=12, seed=20),
    dict(name="unipc_from_dpm_midpoint", config=cfg("DPMSolverMultistepScheduler", SD, solver_type="midpoint"), steps=12, seed=21,
         sampler="UniPCMultistepScheduler"),
    # DPM-Solver++ order 3, Karras on the cosine schedule, lambda clipping.
    dict(name="dpm3_sd_25", config=cfg("DPMSolverMultistepScheduler", SD, solver_order=3), steps=25, seed=22),
    dict(name="dpm3_sde_karras_20", config=cfg("DPMSolverMultistepScheduler", SD, solver_order=3, algorithm_type="sde-dpmsolver++",
                                               use_karras_sigmas=True), steps=20, seed=23),
    dict(name="dpm3_heun_10", config=cfg("DPMSolverMultistepScheduler", SD, solver_order=3, solver_type="heun"), steps=10, seed=24),
    dict(name="dpm3_img2img", config=cfg("DPMSolverMultistepScheduler", SD, solver_order=3), steps=20, seed=25, strength=0.7),
    dict(name="dpm_karras_cos_20", config=cfg("DPMSolverMultistepScheduler", COS, use_karras_sigmas=True), steps=20, seed=26),
    dict(name="dpm_cos_lambda_clip_20", config=cfg("DPMSolverMultistepScheduler", COS, lambda_min_clipped=-5.1), steps=20, seed=27),
    dict(name="dpm_cos_lambda_clip_leading", config=cfg("DPMSolverMultistepScheduler", COS, lambda_min_clipped=-5.1,
                                                        timestep_spacing="leading", steps_offset=1), steps=15, seed=28),
    dict(name="dpm_karras_config_20", config=cfg("DPMSolverMultistepScheduler", SD, use_karras_sigmas=True, euler_at_final=True,
                                                 final_sigmas_type="sigma_min"), steps=20, seed=29),
    dict(name="dpm_from_unipc_bh2", config=cfg("UniPCMultistepScheduler", SD, solver_type="bh2"), steps=12, seed=30,
         sampler="DPMSolverMultistepScheduler"),
    # Keys and defaults through from_config.
    dict(name="euler_from_sd15", config=SD15, steps=15, seed=31, sampler="EulerDiscreteScheduler"),
    dict(name="euler_karras_bounds", config=cfg("EulerDiscreteScheduler", SD, use_karras_sigmas=True, sigma_min=0.05, sigma_max=8.0,
                                                final_sigmas_type="sigma_min"), steps=15, seed=32),
    dict(name="euler_a_ignores_karras", config=cfg("EulerAncestralDiscreteScheduler", SD, use_karras_sigmas=True), steps=10, seed=33),
    dict(name="ddim_from_pndm_sd15", config=SD15, steps=20, seed=34, sampler="DDIMScheduler"),
    dict(name="unipc_from_sd15", config=SD15, steps=20, seed=35, sampler="UniPCMultistepScheduler"),
    # Rectified flow (SD3, FLUX): static and dynamic shifts, terminal stretch, respaced levels,
    # stochastic sampling, img2img.
    dict(name="flow_plain_10", config=cfg("FlowMatchEulerDiscreteScheduler"), steps=10, seed=39),
    dict(name="flow_sd3_shift3_28", config=cfg("FlowMatchEulerDiscreteScheduler", shift=3.0), steps=28, seed=40),
    dict(name="flow_shift1.15_7", config=cfg("FlowMatchEulerDiscreteScheduler", shift=1.15), steps=7, seed=41),
    dict(name="flow_flux_dynamic_20", config=cfg("FlowMatchEulerDiscreteScheduler", use_dynamic_shifting=True, base_shift=0.5,
                                                 max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096, shift=3.0),
         steps=20, seed=42, image_seq_len=4096),
    dict(name="flow_dynamic_small_12", config=cfg("FlowMatchEulerDiscreteScheduler", use_dynamic_shifting=True), steps=12, seed=43,
         image_seq_len=49),
    dict(name="flow_dynamic_linear_9", config=cfg("FlowMatchEulerDiscreteScheduler", use_dynamic_shifting=True,
                                                  time_shift_type="linear"), steps=9, seed=44, image_seq_len=1024),
    dict(name="flow_terminal_15", config=cfg("FlowMatchEulerDiscreteScheduler", shift=2.0, shift_terminal=0.1), steps=15, seed=45),
    dict(name="flow_karras_12", config=cfg("FlowMatchEulerDiscreteScheduler", shift=3.0, use_karras_sigmas=True), steps=12, seed=46),
    dict(name="flow_exponential_10", config=cfg("FlowMatchEulerDiscreteScheduler", use_exponential_sigmas=True, num_train_timesteps=500),
         steps=10, seed=47),
    dict(name="flow_stochastic_8", config=cfg("FlowMatchEulerDiscreteScheduler", shift=3.0, stochastic_sampling=True), steps=8, seed=48),
    dict(name="flow_img2img", config=cfg("FlowMatchEulerDiscreteScheduler", shift=3.0), steps=20, seed=49, strength=0.6),
    dict(name="flow_1", config=cfg("FlowMatchEulerDiscreteScheduler", shift=3.0), steps=1, seed=50),
]


def from_config(cls, config):
    params = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in config.items() if k in params and k != "self"})


def run(case):
    cls = CLASSES[case.get("sampler", case["config"]["_class_name"])]
    sch = from_config(cls, case["config"])
    n = case["steps"]
    flow = not hasattr(sch, "scale_model_input")
    if case.get("image_seq_len"):
        c = sch.config
        sch.set_timesteps(n, mu=calculate_shift(case["image_seq_len"], c.get("base_image_seq_len", 256),
                                                c.get("max_image_seq_len", 4096), c.get("base_shift", 0.5),
                                                c.get("max_shift", 1.15)))
    else:
        sch.set_timesteps(n)
    gen = torch.manual_seed(case["seed"])
    strength = case.get("strength", 0)
    order = getattr(sch, "order", 1)
    if strength:
        size = int(np.prod(SHAPE))
        x0 = (torch.arange(size, dtype=torch.float32) / size - 0.5).reshape(SHAPE)
        noise = torch.randn(SHAPE, generator=gen, dtype=torch.float32)
        init = min(int(n * strength), n)
        t_start = max(n - init, 0)
        timesteps = sch.timesteps[t_start * order:]
        if hasattr(sch, "set_begin_index"):
            sch.set_begin_index(t_start * order)
        if flow:
            x = sch.scale_noise(x0, timesteps[:1], noise)
        else:
            x = sch.add_noise(x0, noise, timesteps[:1])
    elif flow:
        x = torch.randn(SHAPE, generator=gen, dtype=torch.float32)
        timesteps = sch.timesteps
    else:
        x = torch.randn(SHAPE, generator=gen, dtype=torch.float32) * sch.init_noise_sigma
        timesteps = sch.timesteps
    takes_gen = "generator" in inspect.signature(sch.step).parameters
    for t in timesteps:
        inp = x if flow else sch.scale_model_input(x, t)
        out = inp * t / (t + 1)
        kw = {"generator": gen} if takes_gen else {}
        x = sch.step(out, t, x, **kw).prev_sample
    return [float(v) for v in sch.timesteps], [float(v) for v in x.flatten()]


def main():
    out = {"diffusers_commit": diffusers_stub.rev(), "torch": torch.__version__, "numpy": np.__version__,
           "shape": list(SHAPE), "cases": []}
    for case in CASES:
        ts, sample = run(case)
        bad = [v for v in sample if not math.isfinite(v)]
        print(f"{case['name']}: {len(ts)} timesteps, mean |x| {np.mean(np.abs(sample)):.6f}{' NON-FINITE' if bad else ''}")
        c = {k: case[k] for k in ("name", "config", "steps", "seed")}
        c["sampler"] = case.get("sampler", "")
        c["strength"] = case.get("strength", 0)
        c["image_seq_len"] = case.get("image_seq_len", 0)
        c["timesteps"] = ts
        c["sample"] = sample
        out["cases"].append(c)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=None)
        f.write("\n")


if __name__ == "__main__":
    main()
