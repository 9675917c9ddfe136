#!/usr/bin/env bash
# Install the built wheel (not editable) into a fresh environment and run every script from a folder that holds
# only scripts/ and configs/, as the Docker image does: a module or data file missing from the wheel fails here.
#   usage: .ci/check_wheel_install.sh PYTHON TORCH_REQUIREMENT
set -euo pipefail
python=${1:?usage: check_wheel_install.sh PYTHON TORCH_REQUIREMENT}
torch_requirement=${2:?usage: check_wheel_install.sh PYTHON TORCH_REQUIREMENT}
work=build/wheel-check
# setuptools builds in build/lib and never deletes stale files there: a module removed from the source would still
# ship. Start from an empty build folder.
rm -rf "$work" build/lib build/bdist.*
mkdir -p "$work/app"

echo "== build the wheel"
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" .
wheel=$(ls "$work"/dist/ddrnet_hf-*.whl)
version=$(basename "$wheel" | cut -d- -f2)
grep -q "ddrnet-hf\[train\]==$version\"" Dockerfile || { echo "Dockerfile does not install version $version"; exit 1; }
echo "== install $(basename "$wheel")[train] into a fresh environment"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$torch_requirement" "$wheel[train]"

cp -r scripts configs "$work/app/"
cd "$work/app"
py=../venv/bin/python
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=1
echo "== every script's --help"
for script in scripts/*.py; do
    "$py" "$script" --help >/dev/null || { echo "$script --help failed"; exit 1; }
done
echo "== every console command's --help, from an empty folder"
mkdir -p ../empty
for script in scripts/*.py; do
    name=$(basename "$script" .py)
    [ "$name" = demo ] && continue
    command="ddrnet-${name//_/-}"
    (cd ../empty && "../venv/bin/$command" --help >/dev/null) || { echo "$command --help failed"; exit 1; }
done
(cd ../empty && ../venv/bin/python -m ddrnet_toolkit.commands.train --help >/dev/null) \
    || { echo "python -m ddrnet_toolkit.commands.train --help failed"; exit 1; }
echo "== a tiny train (the plus recipe, scaled down), eval and predict (console commands), push"
"$py" scripts/make_synthetic_cityscapes.py --output_dir data --num_train 4 --num_val 2 --num_test 1 --height 64 \
    --width 128
"$py" scripts/train.py --config configs/recipes/cityscapes-plus.yaml --warmup_steps 1 --data_dir data \
    --output_dir run --max_train_steps 10 --per_device_train_batch_size 2 --crop_size 64 64 --base_size 128 \
    --num_workers 0 --eval_steps 10 --ohem_min_kept 500 --report_to none
test -f run/train_config.yaml
../venv/bin/ddrnet-eval --model_name_or_path run/best_model --data_dir data --output_file eval.json
../venv/bin/ddrnet-predict --model_name_or_path run/best_model --inputs data/leftImg8bit/val --output_dir predictions
"$py" scripts/push_to_hub.py --model_name_or_path run/best_model --hub_dir hub --repo_id demo/wheel-check
"$py" -c "import evaluate, ddrnet_toolkit; evaluate.load(ddrnet_toolkit.MEAN_IOU_METRIC_PATH)"
test -f hub/demo/wheel-check/modeling_ddrnet.py
test -f hub/demo/wheel-check/app.py && test -f hub/demo/wheel-check/requirements.txt
echo "wheel install check passed"
