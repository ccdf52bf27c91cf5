import TensorEngine

/// A parameter or buffer as a module registers it.
package struct ModuleTensor: Sendable, Hashable {
    /// Full dotted name (`model.layers.0.self_attn.q_proj.weight`).
    package let name: String
    package let shape: [Int]
    /// A fixed dtype (buffers such as `inv_freq` stay float32), or nil for "the model's dtype".
    package let fixedDType: DType?
    /// False for non-persistent buffers, which are not in the state dict and never saved.
    package let persistent: Bool

    package init(name: String, shape: [Int], fixedDType: DType? = nil, persistent: Bool = true) {
        self.name = name
        self.shape = shape
        self.fixedDType = fixedDType
        self.persistent = persistent
    }

    package var elementCount: Int { TensorEngine.elementCount(of: shape) ?? 0 }
}

/// The module tree a transformers model registers (model → layers → submodules), kept for placement:
/// accelerate's device map works on module names and classes, not on flat tensor lists.
package struct ModuleNode: Sendable, Hashable {
    /// Full dotted path; "" for the root.
    package let name: String
    /// The Python class name (`LlamaDecoderLayer`), which `no_split_module_classes` refers to.
    package let className: String
    /// Child modules in registration order.
    package var children: [ModuleNode]
    /// Parameters registered directly on this module, in registration order.
    package var parameters: [ModuleTensor]
    /// Buffers registered directly on this module.
    package var buffers: [ModuleTensor]

    package init(
        name: String, className: String, children: [ModuleNode] = [], parameters: [ModuleTensor] = [],
        buffers: [ModuleTensor] = []
    ) {
        self.name = name
        self.className = className
        self.children = children
        self.parameters = parameters
        self.buffers = buffers
    }

    /// The name of a child called `local`.
    package func childName(_ local: String) -> String { name.isEmpty ? local : name + "." + local }

    /// Every parameter in this subtree, in `named_parameters()` order (own first, then children's).
    package var allParameters: [ModuleTensor] {
        parameters + children.flatMap(\.allParameters)
    }

    /// Every buffer in this subtree, in `named_buffers()` order.
    package var allBuffers: [ModuleTensor] {
        buffers + children.flatMap(\.allBuffers)
    }

    /// Depth-first search by full name.
    package func find(_ path: String) -> ModuleNode? {
        if name == path { return self }
        for child in children where path == child.name || path.hasPrefix(child.name + ".") {
            return child.find(path)
        }
        return nil
    }

    /// The tree in which every tensor's shape went through `transform`.
    func mapShapes(_ transform: (ModuleTensor) -> [Int]) -> ModuleNode {
        ModuleNode(
            name: name, className: className,
            children: children.map { $0.mapShapes(transform) },
            parameters: parameters.map {
                ModuleTensor(name: $0.name, shape: transform($0), fixedDType: $0.fixedDType, persistent: $0.persistent)
            },
            buffers: buffers.map {
                ModuleTensor(name: $0.name, shape: transform($0), fixedDType: $0.fixedDType, persistent: $0.persistent)
            })
    }
}
