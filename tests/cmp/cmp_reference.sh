#!/usr/bin/env bash
# The notebook's cmp table: generated gradients of specs/mlp_bn.ninja (-O0)
# against the hand-written C reference (tests/reference), on the same
# notebook-initialised parameters and a random batch.
#
# usage: cmp_reference.sh TRAINER_O0 REF_MLP NINJAC_CMP REF_MKBATCH WORKDIR [--fused] [--hidden H] [--seed S]
#   --fused: compare against the reference's exercise 2 + 3 fused backward
#            (the notebook reports maxdiff ~6e-9 and ~9e-10 there), only the
#            tensors the fused backward produces.
# Exit status: 0 when every row is approximately equal (torch.allclose defaults).
set -euo pipefail
trainer=$1 ref=$2 cmp=$3 mkbatch=$4 work=$5
shift 5
fused="" hidden=64 seed=1
while [ $# -gt 0 ]; do
  case $1 in
    --fused) fused=--fused ;;
    --hidden) hidden=$2; shift ;;
    --seed) seed=$2; shift ;;
    *) echo "cmp_reference.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$work"
"$mkbatch" --params "$work/params.safetensors" --inputs "$work/batch.safetensors" --seed "$seed" --hidden "$hidden"
"$trainer" grads --params "$work/params.safetensors" --inputs "$work/batch.safetensors" --out "$work/generated.safetensors"
"$ref" grads --params "$work/params.safetensors" --inputs "$work/batch.safetensors" --out "$work/reference.safetensors" $fused
if [ -n "$fused" ]; then
  # the fused backward's own results; b1 left out: its gradient is 0 in
  # exact arithmetic, so both sides hold only ~1e-8 of rounding noise
  exec "$cmp" "$work/generated.safetensors" "$work/reference.safetensors" --prefix grad. \
    --only logits,h,hpreact,hprebn,embcat,emb,C,W1,W2,b2,bngain,bnbias
fi
# rows in the notebook's order (A's order is the backward order of -O0 grads)
exec "$cmp" "$work/generated.safetensors" "$work/reference.safetensors" --prefix grad. \
  --only logprobs,probs,counts_sum_inv,counts_sum,counts,norm_logits,logit_maxes,logits,h,W2,b2,hpreact,bngain,bnbias,bnraw,bnvar_inv,bnvar,bndiff2,bndiff,bnmeani,hprebn,embcat,W1,b1,emb,C
