import OrderedCollections
import TensorEngine

/// The decoder-only Llama family as transformers registers it: `llama`, `mistral`, `gemma`, `qwen2`.
///
/// Registration order (which is `state_dict()` order, which is the order `save_pretrained` splits in):
/// `model.embed_tokens`, then per layer `self_attn.{q,k,v,o}_proj` (weight, then bias where the family has
/// one), `mlp.{gate,up,down}_proj`, `input_layernorm`, `post_attention_layernorm`; then `model.norm`,
/// `model.rotary_emb` (buffers only, not saved) and `lm_head`.
///
/// The module tree is `named_modules()` of transformers 5.24 exactly (checked against
/// `Tests/Fixtures/device-maps/module-trees.json`): parameter-less modules included (`mlp.act_fn`, with the
/// class `ACT2CLS` gives `hidden_act`), and every buffer — `rotary_emb.inv_freq` / `original_inv_freq`
/// (float32, head_dim/2 values, not persistent) and Gemma's `embed_tokens.embed_scale` (a scalar in the model
/// dtype, not persistent) — since accelerate sizes modules with their buffers.
enum LlamaFamily {
    struct Family {
        let classPrefix: String
        /// `tie_word_embeddings` when the config omits it (each config class's own default).
        let tiesByDefault: Bool
        /// RMSNorm weight init: Gemma stores weight − 1, so its norms start at 0.
        let normInit: Double
        let qkvBias: (ModelConfig) throws -> Bool
        let outputBias: (ModelConfig) throws -> Bool
        let mlpBias: (ModelConfig) throws -> Bool
        /// `hidden_act` when the config omits it (each config class's own default).
        let defaultActivation: String
        /// Gemma's embedding is `GemmaTextScaledWordEmbedding`, which registers a non-persistent scalar
        /// `embed_scale` buffer in the model's dtype; the others use a plain `Embedding`.
        let scaledEmbedding: Bool
    }

    /// The module class transformers' `ACT2CLS` builds for a `hidden_act` name (`act_fn`'s class name, which a
    /// `--no-split` list may name). Unknown names keep the generic "Activation".
    static func activationClass(_ name: String) -> String {
        let classes: [String: String] = [
            "gelu": "GELUActivation", "gelu_10": "ClippedGELUActivation", "gelu_fast": "FastGELUActivation",
            "gelu_new": "NewGELUActivation", "gelu_python": "GELUActivation", "gelu_pytorch_tanh": "GELUTanh",
            "gelu_python_tanh": "GELUTanh", "gelu_accurate": "AccurateGELUActivation", "hardswish": "Hardswish",
            "laplace": "LaplaceActivation", "leaky_relu": "LeakyReLU", "linear": "LinearActivation",
            "mish": "MishActivation",
            "quick_gelu": "QuickGELUActivation", "relu": "ReLU", "relu2": "ReLUSquaredActivation", "relu6": "ReLU6",
            "sigmoid": "Sigmoid", "silu": "SiLUActivation", "sqrtsoftplus": "SqrtSoftplusActivation", "swish": "SiLU",
            "tanh": "Tanh", "prelu": "PReLU", "xielu": "XIELUActivation",
        ]
        return classes[name] ?? "Activation"
    }

    static func family(_ modelType: String) -> Family {
        switch modelType {
        case "gemma":
            return Family(
                classPrefix: "Gemma", tiesByDefault: true, normInit: 0.0,
                qkvBias: { try $0.bool("attention_bias", default: false) },
                outputBias: { try $0.bool("attention_bias", default: false) },
                mlpBias: { _ in false }, defaultActivation: "gelu_pytorch_tanh", scaledEmbedding: true)
        case "qwen2":
            return Family(
                classPrefix: "Qwen2", tiesByDefault: false, normInit: 1.0, qkvBias: { _ in true },
                outputBias: { _ in false }, mlpBias: { _ in false },
                defaultActivation: "silu", scaledEmbedding: false)
        case "mistral":
            return Family(
                classPrefix: "Mistral", tiesByDefault: false, normInit: 1.0, qkvBias: { _ in false },
                outputBias: { _ in false }, mlpBias: { _ in false },
                defaultActivation: "silu", scaledEmbedding: false)
        default:
            return Family(
                classPrefix: "Llama", tiesByDefault: false, normInit: 1.0,
                qkvBias: { try $0.bool("attention_bias", default: false) },
                outputBias: { try $0.bool("attention_bias", default: false) },
                mlpBias: { try $0.bool("mlp_bias", default: false) }, defaultActivation: "silu", scaledEmbedding: false)
        }
    }

    /// The dimensions and options a config gives the family.
    struct Dimensions {
        let hidden: Int
        let intermediate: Int
        let heads: Int
        let kvHeads: Int
        let layers: Int
        let vocab: Int
        let headDim: Int
        let tied: Bool
        let std: Double
        let padding: Int?
        let qkvBias: Bool
        let outputBias: Bool
        let mlpBias: Bool
        let activation: String

        init(config: ModelConfig, family: Family) throws {
            hidden = try config.positiveInt("hidden_size")
            intermediate = try config.positiveInt("intermediate_size")
            heads = try config.positiveInt("num_attention_heads")
            kvHeads = try config.optionalPositiveInt("num_key_value_heads") ?? heads
            layers = try config.positiveInt("num_hidden_layers")
            vocab = try config.positiveInt("vocab_size")
            if let explicit = try config.optionalPositiveInt("head_dim") {
                headDim = explicit
            } else {
                guard hidden % heads == 0 else {
                    throw ModelConfigError(
                        path: config.path, field: "head_dim",
                        "missing, and hidden_size \(hidden) is not divisible by num_attention_heads \(heads)")
                }
                headDim = hidden / heads
            }
            guard layers <= 10_000 else {
                throw ModelConfigError(
                    path: config.path, field: "num_hidden_layers",
                    "is \(layers); more than 10,000 layers is not a real model")
            }
            tied = try config.bool("tie_word_embeddings", default: family.tiesByDefault)
            std = try config.positiveDouble("initializer_range", default: 0.02)
            let vocab = self.vocab
            padding = config.optionalIndex("pad_token_id").flatMap { $0 < vocab ? $0 : nil }
            qkvBias = try family.qkvBias(config)
            outputBias = try family.outputBias(config)
            mlpBias = try family.mlpBias(config)
            activation = LlamaFamily.activationClass(
                config.fields["hidden_act"]?.stringValue ?? family.defaultActivation)
        }
    }

    /// Builds the module tree in registration order, collecting the parameters as it goes.
    final class Builder {
        let family: Family
        let d: Dimensions
        var parameters: [ParameterSpec] = []

        init(family: Family, dimensions: Dimensions) {
            self.family = family
            self.d = dimensions
        }

        func parameter(_ name: String, _ shape: [Int], _ initialization: ParameterInit) -> ModuleTensor {
            parameters.append(ParameterSpec(name: name, shape: shape, initialization: initialization))
            return ModuleTensor(name: name, shape: shape)
        }

        func linear(_ name: String, out: Int, in inFeatures: Int, bias: Bool) -> ModuleNode {
            var tensors = [parameter(name + ".weight", [out, inFeatures], .normal(std: d.std, zeroRow: nil))]
            if bias { tensors.append(parameter(name + ".bias", [out], .zeros)) }
            return ModuleNode(name: name, className: "Linear", parameters: tensors)
        }

        func norm(_ name: String) -> ModuleNode {
            ModuleNode(
                name: name, className: family.classPrefix + "RMSNorm",
                parameters: [parameter(name + ".weight", [d.hidden], .constant(family.normInit))])
        }

        /// Gemma's scaled embedding also registers `embed_scale` (a scalar, non-persistent, in the model's dtype).
        func embedding() -> ModuleNode {
            ModuleNode(
                name: "model.embed_tokens",
                className: family.scaledEmbedding ? family.classPrefix + "TextScaledWordEmbedding" : "Embedding",
                parameters: [
                    parameter(
                        "model.embed_tokens.weight", [d.vocab, d.hidden], .normal(std: d.std, zeroRow: d.padding))
                ],
                buffers: family.scaledEmbedding
                    ? [ModuleTensor(name: "model.embed_tokens.embed_scale", shape: [], persistent: false)] : [])
        }

        func layer(_ i: Int) -> ModuleNode {
            let prefix = "model.layers.\(i)"
            let attention = ModuleNode(
                name: prefix + ".self_attn", className: family.classPrefix + "Attention",
                children: [
                    linear(prefix + ".self_attn.q_proj", out: d.heads * d.headDim, in: d.hidden, bias: d.qkvBias),
                    linear(prefix + ".self_attn.k_proj", out: d.kvHeads * d.headDim, in: d.hidden, bias: d.qkvBias),
                    linear(prefix + ".self_attn.v_proj", out: d.kvHeads * d.headDim, in: d.hidden, bias: d.qkvBias),
                    linear(prefix + ".self_attn.o_proj", out: d.hidden, in: d.heads * d.headDim, bias: d.outputBias),
                ])
            let mlp = ModuleNode(
                name: prefix + ".mlp", className: family.classPrefix + "MLP",
                children: [
                    linear(prefix + ".mlp.gate_proj", out: d.intermediate, in: d.hidden, bias: d.mlpBias),
                    linear(prefix + ".mlp.up_proj", out: d.intermediate, in: d.hidden, bias: d.mlpBias),
                    linear(prefix + ".mlp.down_proj", out: d.hidden, in: d.intermediate, bias: d.mlpBias),
                    ModuleNode(name: prefix + ".mlp.act_fn", className: d.activation),
                ])
            return ModuleNode(
                name: prefix, className: family.classPrefix + "DecoderLayer",
                children: [
                    attention, mlp, norm(prefix + ".input_layernorm"), norm(prefix + ".post_attention_layernorm"),
                ])
        }

        /// Non-persistent float32 buffers: never saved, but accelerate counts them when sizing modules.
        func rotary() -> ModuleNode {
            ModuleNode(
                name: "model.rotary_emb", className: family.classPrefix + "RotaryEmbedding",
                buffers: [
                    ModuleTensor(
                        name: "model.rotary_emb.inv_freq", shape: [d.headDim / 2], fixedDType: .f32, persistent: false),
                    ModuleTensor(
                        name: "model.rotary_emb.original_inv_freq", shape: [d.headDim / 2], fixedDType: .f32,
                        persistent: false),
                ])
        }
    }

    static func build(config: ModelConfig, modelType: String) throws -> ModelArchitecture {
        let family = family(modelType)
        let d = try Dimensions(config: config, family: family)
        let builder = Builder(family: family, dimensions: d)
        let embedding = builder.embedding()
        let layers = (0..<d.layers).map { builder.layer($0) }
        let finalNorm = builder.norm("model.norm")
        let rotary = builder.rotary()
        var tiedAliases = OrderedDictionary<String, String>()
        let lmHead: ModuleNode
        if d.tied {
            tiedAliases["lm_head.weight"] = "model.embed_tokens.weight"
            lmHead = ModuleNode(
                name: "lm_head", className: "Linear",
                parameters: [ModuleTensor(name: "lm_head.weight", shape: [d.vocab, d.hidden])])
        } else {
            lmHead = builder.linear("lm_head", out: d.vocab, in: d.hidden, bias: false)
        }
        let model = ModuleNode(
            name: "model", className: family.classPrefix + "Model",
            children: [
                embedding, ModuleNode(name: "model.layers", className: "ModuleList", children: layers), finalNorm,
                rotary,
            ])
        let root = ModuleNode(name: "", className: family.classPrefix + "ForCausalLM", children: [model, lmHead])
        return ModelArchitecture(
            modelType: modelType, className: family.classPrefix + "ForCausalLM", parameters: builder.parameters,
            tiedAliases: tiedAliases,
            root: root, noSplitClasses: [family.classPrefix + "DecoderLayer"], initializerRange: d.std)
    }
}
