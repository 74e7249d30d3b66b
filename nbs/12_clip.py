# %%
#| default_exp clip

# %%
#| export
from __future__ import annotations
import copy, math, re
from pathlib import Path
import torch
from torch import nn
import torch.nn.functional as F

# %%
from fastcore.test import test_eq, test_fail, test_close


# %% [markdown]
# # CLIP as FactorCL's backbone
# > Image and text encoders from a CLIP model, batched image and text augmentations, for continued pretraining on IRFL (Table 3)

# %% [markdown]
# For IRFL the paper continues the pretraining of CLIP ViT-B/32 with FactorCL: $X_1$ is the image, $X_2$ the
# phrase, and each backbone is CLIP's own encoder with its projection, whose L2-normalised 512-d output is the
# `h` that FactorCL's heads read.
#
# **Why Hugging Face `transformers` and not `open_clip`.** The design named open_clip. open_clip imports
# torchvision, and torchvision's wheels on PyPI for torch 2.13 are CUDA builds: next to the CPU build of torch
# they fail to import (`RuntimeError: operator torchvision::nms does not exist`; their `_C.so` links
# `libtorch_cuda.so`). `transformers`' `CLIPModel` needs no torchvision and loads the same OpenAI weights
# (`openai/clip-vit-base-patch32`), so the optional extra `clip` installs `transformers` and the image
# augmentations below are written in plain torch.
#
# **Weights are never downloaded at run time.** `load_clip` reads a local folder (`save_pretrained` format,
# e.g. a `git clone https://huggingface.co/openai/clip-vit-base-patch32`) or the Hugging Face cache.
# Tests use `tiny_clip`, a randomly initialised CLIP with the same architecture at toy size.

# %% [markdown]
# ## Token ids with explicit padding
#
# Text views are integer tensors `[n, L]`: the tokenizer's ids, with **-1 at padding**. Keeping padding
# visible in the ids (instead of a separate attention mask) lets a view stay a single tensor, so it travels
# through `fit`, the augmentations and the distributed gather like any other view. CLIP's tokenizer pads with
# its end-of-text id, which would make padding indistinguishable from the end of the text.

# %%
#| export
class WordTokenizer:
    "A word-level tokenizer built from a list of texts (offline; for tests and tiny models): [bos] words [eos]."
    pad_id, bos_id, unk_id = 0, 1, 2
    def __init__(self, texts:list, # texts whose lowercased words form the vocabulary
                ):
        words = sorted({w for t in texts for w in self.words(t)})
        self.vocab = {w: i + 3 for i, w in enumerate(words)}
        self.eos_id = len(self.vocab) + 3
        self.vocab_size = self.eos_id + 1
    @staticmethod
    def words(text:str) -> list:
        "Lowercased words of `text`."
        return re.findall(r"[\w']+", text.lower())
    def encode(self, text:str) -> list:
        "Token ids of one text, with bos and eos."
        return [self.bos_id] + [self.vocab.get(w, self.unk_id) for w in self.words(text)] + [self.eos_id]

def tokenize(tokenizer, # a WordTokenizer or a Hugging Face CLIP tokenizer
             texts:list, # strings
             max_len:int=77, # longest sequence kept (CLIP: 77); longer texts are truncated, keeping eos
            ) -> torch.Tensor:
    "Token ids `[n, L]` (L = the longest text, at most max_len) with -1 at padding."
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"texts must be a list of strings, got {type(texts).__name__}")
    if isinstance(tokenizer, WordTokenizer): ids = [tokenizer.encode(t) for t in texts]
    else: ids = tokenizer(list(texts), truncation=True, max_length=max_len)['input_ids']
    ids = [s if len(s) <= max_len else s[:max_len - 1] + s[-1:] for s in ids]
    out = torch.full((len(ids), max(map(len, ids))), -1, dtype=torch.long)
    for i, s in enumerate(ids): out[i, :len(s)] = torch.tensor(s)
    return out


# %%
tok = WordTokenizer(['Time is money', 'as brave as a lion'])
ids = tokenize(tok, ['time is money', 'brave as a zebra', 'lion'])
test_eq(ids.shape, (3, 6)); test_eq(ids[2].tolist(), [1, tok.vocab['lion'], tok.eos_id, -1, -1, -1])
test_eq(ids[1, 4].item(), tok.unk_id)                      # unknown word
test_eq(tokenize(tok, ['as brave as a lion'], max_len=4)[0].tolist()[-1], tok.eos_id)   # truncation keeps eos
test_fail(lambda: tokenize(tok, 'a string'), contains='texts must be a list of strings')


# %% [markdown]
# ## Models
#
# `tiny_clip` builds a CLIP with two small transformer layers per tower, for tests; `load_clip` loads real
# weights and their tokenizer from disk.

# %%
#| export
def _transformers():
    try:
        import transformers
        return transformers
    except ImportError:
        raise ImportError('CLIP needs the optional extra: pip install "factorcl_nb[clip]" (installs transformers)') from None

def tiny_clip(vocab_size:int, # tokenizer vocabulary size (WordTokenizer.vocab_size)
              image_size:int=32, # input side of the vision tower
              embed_dim:int=16, # projection size (the encoders' out_dim)
              eos_id:int|None=None, # id of the end-of-text token, where the text tower reads out (default: last id)
              seed:int=0, # initialisation
             ):
    "A randomly initialised CLIPModel with tiny towers (for tests and CPU demos)."
    tf = _transformers()
    eos = vocab_size - 1 if eos_id is None else eos_id
    cfg = tf.CLIPConfig(text_config=dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, max_position_embeddings=77, pad_token_id=0, bos_token_id=1,
                                         eos_token_id=eos),
                        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                           image_size=image_size, patch_size=max(4, image_size // 4)),
                        projection_dim=embed_dim)
    torch.manual_seed(seed)
    return tf.CLIPModel(cfg)

def load_clip(name_or_path:str='openai/clip-vit-base-patch32', # local folder, or a model name already in the HF cache
              local_files_only:bool=True, # never download (set False only where downloads are allowed)
             ) -> tuple:
    "`(model, tokenizer)` of a pretrained CLIP read from disk."
    tf = _transformers()
    try:
        model = tf.CLIPModel.from_pretrained(name_or_path, local_files_only=local_files_only)
        tokenizer = tf.AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_files_only)
    except OSError as e:
        raise FileNotFoundError(
            f"CLIP weights {name_or_path!r} are not on this machine. Put a copy of the model folder somewhere (e.g. "
            "`git clone https://huggingface.co/openai/clip-vit-base-patch32`) and pass its path "
            f"(the irfl experiment's `clip` parameter). ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    return model, tokenizer


# %% [markdown]
# ## Encoders
#
# Each encoder owns one tower of a CLIP model and its projection (a deep copy, so the two views' encoders and
# every run start from the same pretrained weights without sharing parameters). Images come in as pixels in
# $[0, 1]$; the image encoder resizes them to the tower's input size and applies CLIP's normalisation. Both
# return L2-normalised embeddings `[n, out_dim]`, as CLIP's contrastive objective uses them.

# %%
#| export
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)   # OpenAI CLIP's pixel normalisation
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

class ClipImageEncoder(nn.Module):
    "CLIP's vision tower and projection: images [n, 3, H, W] in [0, 1] -> unit vectors [n, out_dim]."
    def __init__(self, clip_model):
        super().__init__()
        self.vision, self.proj = copy.deepcopy(clip_model.vision_model), copy.deepcopy(clip_model.visual_projection)
        self.size, self.out_dim = clip_model.config.vision_config.image_size, self.proj.out_features
        self.register_buffer('mean', torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)
    def forward(self, x:torch.Tensor) -> torch.Tensor:
        "[n, 3, H, W] pixels in [0, 1] -> [n, out_dim] unit vectors"
        if x.ndim != 4 or x.shape[1] != 3: raise ValueError(f"x must be images [n, 3, H, W], got shape {tuple(x.shape)}")
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode='bicubic', align_corners=False)
        h = self.vision(pixel_values=(x - self.mean.to(x.dtype)) / self.std.to(x.dtype)).pooler_output
        return F.normalize(self.proj(h), dim=-1)

class ClipTextEncoder(nn.Module):
    "CLIP's text tower and projection: token ids [n, L] (-1 at padding) -> unit vectors [n, out_dim]."
    def __init__(self, clip_model):
        super().__init__()
        self.text, self.proj = copy.deepcopy(clip_model.text_model), copy.deepcopy(clip_model.text_projection)
        self.pad_id, self.out_dim = clip_model.config.text_config.pad_token_id or 0, self.proj.out_features
    def forward(self, ids:torch.Tensor) -> torch.Tensor:
        "[n, L] token ids, -1 at padding -> [n, out_dim] unit vectors"
        if ids.ndim != 2 or ids.is_floating_point(): raise ValueError(f"ids must be integer token ids [n, L], got {ids.dtype} {tuple(ids.shape)}")
        mask = ids >= 0
        h = self.text(input_ids=ids.masked_fill(~mask, self.pad_id), attention_mask=mask.long()).pooler_output
        return F.normalize(self.proj(h), dim=-1)

def clip_encoders(clip_model) -> list:
    "[image encoder, text encoder] of `clip_model`, fresh copies (pass `lambda: clip_encoders(m)` to run_method)."
    return [ClipImageEncoder(clip_model), ClipTextEncoder(clip_model)]


# %%
tok = WordTokenizer(['break the ice', 'like a rock'])
m = tiny_clip(tok.vocab_size, image_size=32, embed_dim=16)
enc_img, enc_txt = clip_encoders(m)
z1 = enc_img(torch.rand(3, 3, 40, 40)); z2 = enc_txt(tokenize(tok, ['break the ice', 'like a rock', 'ice']))
test_eq(z1.shape, (3, 16)); test_eq(z2.shape, (3, 16)); test_close(z1.norm(dim=1), torch.ones(3), eps=1e-5)
# padding is ignored: a text encodes the same alone and in a batch with longer texts
test_close(enc_txt(tokenize(tok, ['ice']))[0], z2[2], eps=1e-5)
# copies: training one encoder leaves the CLIP model (and the other copy) unchanged
assert enc_img.proj.weight.data_ptr() != m.visual_projection.weight.data_ptr()
test_fail(lambda: enc_txt(torch.rand(2, 5)), contains='ids must be integer token ids')


# %% [markdown]
# ## Augmentations, batched
#
# The SSL methods need augmented views. For images, the authors' augmentation is torchvision's random resized
# crop (area 0.2-1), horizontal flip and colour jitter (brightness, contrast, saturation 0.4, hue 0.1, with
# probability 0.8); for text, dropping one random word. Here each is one batched tensor operation, with its own
# random parameters per sample and a seeded `torch.Generator`:
#
# * **crop**: per sample an area fraction $s$ and aspect ratio $r$ (log-uniform) give a box of width $\sqrt{sr}$
#   and height $\sqrt{s/r}$ (fractions of the image) at a random position; `affine_grid` + `grid_sample`
#   resample all boxes at once;
# * **colour jitter**: brightness scales the pixels, contrast moves them towards the image's mean grey,
#   saturation towards each pixel's grey, hue rotates the chroma plane (YIQ), in a random order-free fixed sequence;
# * **token drop**: one real word (not the begin or end token) removed per text, the rest shifted left.
#
# **Unique augmentation.** FactorCL's SSL objective conditions on augmented views and assumes an augmentation
# keeps the view's task-relevant unique information. A crop that keeps 20% of the image can remove the very
# object the phrase refers to, and with it what the image alone says about the figurative meaning. The
# unique augmentation therefore keeps the colour jitter and the flip (which change no object) but only crops
# that keep at least 90% of the image area; `FactorCL-IndAug` uses the independent (authors') one.

# %%
#| export
def _uniform(n, lo, hi, g, device): return lo + (hi - lo) * torch.rand(n, generator=g).to(device)

def random_resized_crop(x:torch.Tensor, # [n, 3, H, W] images
                        scale:tuple=(0.2, 1.0), # range of the kept area fraction
                        ratio:tuple=(3/4, 4/3), # range of the box's aspect ratio
                        generator:torch.Generator|None=None,
                       ) -> torch.Tensor:
    "Crop a random box from every image (its own box per sample) and resize it back to H x W."
    n, dev = len(x), x.device
    s = _uniform(n, scale[0], scale[1], generator, dev)
    r = torch.exp(_uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator, dev))
    w, h = (s * r).sqrt().clamp(max=1), (s / r).sqrt().clamp(max=1)
    cx = (1 - w) * (2 * torch.rand(n, generator=generator).to(dev) - 1)
    cy = (1 - h) * (2 * torch.rand(n, generator=generator).to(dev) - 1)
    theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, cx, h, cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=False)

def random_flip(x:torch.Tensor, p:float=0.5, generator:torch.Generator|None=None) -> torch.Tensor:
    "Mirror each image left-right with probability p."
    flip = (torch.rand(len(x), generator=generator) < p).to(x.device).view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(-1), x)

_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])

def color_jitter(x:torch.Tensor, # [n, 3, H, W] images in [0, 1]
                 brightness:float=0.4, contrast:float=0.4, saturation:float=0.4, hue:float=0.1,
                 p:float=0.8, # probability that a sample is jittered at all
                 generator:torch.Generator|None=None,
                ) -> torch.Tensor:
    "Random brightness, contrast, saturation and hue per image (applied with probability p), clamped to [0, 1]."
    n, dev, dt = len(x), x.device, x.dtype
    f = lambda a: _uniform(n, 1 - a, 1 + a, generator, dev).to(dt).view(-1, 1, 1, 1)
    b, c, s = f(brightness), f(contrast), f(saturation)
    angle = _uniform(n, -hue, hue, generator, dev).to(dt) * 2 * math.pi
    on = (torch.rand(n, generator=generator) < p).to(dev).view(-1, 1, 1, 1)
    grey_w = torch.tensor([0.299, 0.587, 0.114], device=dev, dtype=dt).view(1, 3, 1, 1)
    y = (x * b).clamp(0, 1)
    y = ((y - (y * grey_w).sum(1, keepdim=True).mean((2, 3), keepdim=True)) * c
         + (y * grey_w).sum(1, keepdim=True).mean((2, 3), keepdim=True)).clamp(0, 1)
    grey = (y * grey_w).sum(1, keepdim=True)
    y = ((y - grey) * s + grey).clamp(0, 1)
    yiq, inv = _YIQ.to(dev, dt), torch.linalg.inv(_YIQ).to(dev, dt)
    cos, sin = angle.cos(), angle.sin()
    rot = torch.zeros(n, 3, 3, device=dev, dtype=dt); rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    m = inv @ rot @ yiq                                            # [n, 3, 3] per-image hue rotation in RGB
    y = torch.einsum('nij,njhw->nihw', m, y).clamp(0, 1)
    return torch.where(on, y, x)

def drop_token(ids:torch.Tensor, # [n, L] token ids, -1 at padding, begin and end tokens included
               generator:torch.Generator|None=None,
              ) -> torch.Tensor:
    "Remove one random word per text (never the begin or end token; texts of no word are unchanged)."
    n, L = ids.shape
    length = (ids >= 0).sum(1)                                      # real tokens, begin and end included
    pos = torch.arange(L, device=ids.device)
    droppable = (pos >= 1) & (pos < (length - 1)[:, None])
    score = torch.rand(n, L, generator=generator).to(ids.device).masked_fill(~droppable, -1)
    drop = score.argmax(1).masked_fill(~droppable.any(1), L)           # L: nothing to drop
    src = pos + (pos >= drop[:, None]).long()                          # shift left past the dropped token
    out = ids.gather(1, src.clamp(max=L - 1))
    return out.masked_fill(src >= L, -1)

def irfl_augment(unique:bool=True, # True: crops keep >= 90% of the image; False: the authors' crop (20-100%)
                 seed:int|None=None, # seed of the augmentation's generator (None: torch's global RNG)
                ):
    "The (image, text) augmentation for IRFL: crop, flip and colour jitter the image, drop one word of the text."
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    scale = (0.9, 1.0) if unique else (0.2, 1.0)
    def augment(images, ids):
        x = random_resized_crop(images, scale, generator=g)
        return color_jitter(random_flip(x, generator=g), generator=g), drop_token(ids, generator=g)
    augment.unique = unique
    return augment


# %% [markdown]
# Checks: a crop of the full image with square aspect is the identity; flipping with p=1 mirrors; jitter with
# p=0 changes nothing and otherwise stays in [0, 1]; a token drop removes exactly one word and keeps the
# begin and end tokens; the unique augmentation keeps more of the image than the independent one.

# %%
g = torch.Generator().manual_seed(0)
x = torch.rand(5, 3, 16, 16)
test_close(random_resized_crop(x, (1, 1), (1, 1), generator=g), x, eps=1e-5)
test_eq(random_flip(x, p=1.0), x.flip(-1)); test_eq(random_flip(x, p=0.0), x)
test_eq(color_jitter(x, p=0.0, generator=g), x)
y = color_jitter(x, p=1.0, generator=g); assert 0 <= float(y.min()) and float(y.max()) <= 1 and not torch.equal(y, x)
test_close(color_jitter(x, 0, 0, 0, 0, p=1.0, generator=g), x, eps=1e-5)   # zero strength: identity (hue rotation by 0)
ids = tokenize(tok, ['break the ice', 'like a rock', 'ice', ''])
d = drop_token(ids, generator=g)
test_eq((d >= 0).sum(1).tolist(), [4, 4, 2, 2])                     # one word fewer; 'ice' alone: [bos, eos] stays
test_eq(d[:, 0].tolist(), ids[:, 0].tolist())                        # begin token kept
test_eq([row[row >= 0][-1].item() for row in d], [tok.eos_id] * 4)    # end token kept
for row, orig in zip(d[:2], ids[:2]):                                # the rest is the original minus one word, in order
    kept, o = row[row >= 0].tolist(), orig[orig >= 0].tolist()
    assert any(o[:k] + o[k + 1:] == kept for k in range(1, len(o) - 1))
# unique crops keep more of the image: mean absolute change is smaller
big = torch.rand(64, 3, 32, 32).cumsum(-1) / 32
ch = lambda sc: (random_resized_crop(big, sc, generator=torch.Generator().manual_seed(1)) - big).abs().mean()
assert ch((0.9, 1.0)) < ch((0.2, 1.0))
