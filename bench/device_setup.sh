# Sourced at the start of each device run: install the carried wheels of whatever the image lacks.
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
missing=""
for m in pydantic simpy hypothesis yaml; do python3 -c "import $m" 2>/dev/null || missing="$missing $m"; done
if [ -n "$missing" ] && [ -d .whl ]; then
  echo "installing carried wheels for:$missing"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
