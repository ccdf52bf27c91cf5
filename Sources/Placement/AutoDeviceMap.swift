import Models
import OrderedCollections
import TensorEngine

/// accelerate's automatic placement (`accelerate.utils.modeling`, 1.15): `infer_auto_device_map`,
/// `get_max_layer_size`, `clean_device_map` and `get_balanced_memory`, rule for rule.
///
/// Budgets are carried as `Double`: accelerate's budgets become Python floats when it takes 90% of a lone
/// accelerator, and Python compares ints with floats exactly. Every byte count here is far below 2^53, so a
/// Double holds each integer exactly and every comparison and subtraction gives Python's answer.
package enum AutoDeviceMap {
    /// One entry of accelerate's `modules_to_treat`: a module, or a tensor (a parameter or buffer listed on its own).
    struct Item {
        let name: String
        let node: ModuleNode?

        static func module(_ node: ModuleNode) -> Item { Item(name: node.name, node: node) }
        static func tensor(_ tensor: ModuleTensor) -> Item { Item(name: tensor.name, node: nil) }

        var isModule: Bool { node != nil }
        /// `named_children()`; a tensor has none.
        var children: [ModuleNode] { node?.children ?? [] }
        var className: String { node?.className ?? "Parameter" }

        /// What splitting the module puts in its place: its own parameters, then its child modules (its own
        /// buffers are not listed, as in accelerate).
        var splitItems: [Item] {
            guard let node else { return [] }
            return node.parameters.map(Item.tensor) + node.children.map(Item.module)
        }
    }

    /// `infer_auto_device_map(model, max_memory, no_split_module_classes, dtype)` with `clean_result=True`,
    /// before this tool puts the keys in module order. `budgets` are in device order (accelerators by index,
    /// then cpu, then disk); `disk` is appended when absent, and never limits.
    static func infer(
        root: ModuleNode, sizes: ModuleSizes, budgets: [(device: Device, bytes: Double)], noSplit: Set<String>,
        tiedGroups: [[String]]
    ) -> OrderedDictionary<String, Device> {
        var devices = budgets.map(\.device)
        if !devices.contains(.disk) { devices.append(.disk) }
        let budget = Dictionary(budgets.map { ($0.device, $0.bytes) }, uniquingKeysWith: { _, last in last })
        let accelerators = devices.filter(\.isAccelerator)
        // Devices that keep room for the largest layer, so an offloaded layer can be brought back to run.
        let mainDevices: Set<Device> = accelerators.first.map { [$0, .cpu] } ?? [.cpu]

        var treat: [Item] =
            root.parameters.map(Item.tensor) + root.children.map(Item.module) + root.buffers.map(Item.tensor)
        var map = OrderedDictionary<String, Device>()
        var current = 0
        var used: [Device: Int] = [:]
        var (maxLayer, maxLayerNames) = maxLayerSize(treat, sizes: sizes, noSplit: noSplit)

        while !treat.isEmpty {
            let item = treat.removeFirst()
            let name = item.name
            // The largest remaining layer changes once the current largest has been taken.
            maxLayerNames.removeAll { $0 == name || $0.hasPrefix(name + ".") }
            if maxLayerNames.isEmpty {
                (maxLayer, maxLayerNames) = maxLayerSize(treat.filter(\.isModule), sizes: sizes, noSplit: noSplit)
            }
            let moduleSize = sizes[name]

            // Tie groups with a member inside this item and one outside it (accelerate's substring test on
            // dotted names), and the outside members.
            let inside = { (parameter: String) in containsSubstring(parameter + ".", name + ".") }
            let relevant = tiedGroups.filter { group in group.contains(where: inside) && !group.allSatisfy(inside) }
            let tiedParameters = relevant.flatMap { group in group.filter { !inside($0) } }

            let device = devices[current]
            var limit: Double? = device == .disk ? nil : budget[device] ?? 0
            var reserved = 0
            if mainDevices.contains(device), let l = limit {
                limit = l - Double(maxLayer)
                reserved = maxLayer
            }
            let (sizeWithTies, tiedNames, tiedItems) = Self.sizeWithTies(
                tiedParameters, moduleSize: moduleSize, sizes: sizes, treat: treat)
            let usedHere = used[device, default: 0]

            // The item and the modules tied to it fit: place them all here.
            guard let limit, Double(usedHere + sizeWithTies) > limit else {
                used[device] = usedHere + sizeWithTies
                map[name] = device
                for tiedName in tiedNames {
                    if let index = treat.firstIndex(where: { $0.name == tiedName }) { treat.remove(at: index) }
                    map[tiedName] = device
                }
                continue
            }

            // The item alone fits: try splitting one of the tied modules instead.
            if !tiedParameters.isEmpty && Double(usedHere + moduleSize) <= limit,
                let replanned = splittingTied(
                    item, tiedNames: tiedNames, tiedItems: tiedItems, treat: treat, noSplit: noSplit)
            {
                treat = replanned
                (maxLayer, maxLayerNames) = maxLayerSize(treat.filter(\.isModule), sizes: sizes, noSplit: noSplit)
                continue
            }

            // The item itself does not fit: split it when it has children and may be split.
            if Double(usedHere + moduleSize) >= limit, !item.children.isEmpty, !noSplit.contains(item.className) {
                treat = item.splitItems + treat
                (maxLayer, maxLayerNames) = maxLayerSize(treat.filter(\.isModule), sizes: sizes, noSplit: noSplit)
                continue
            }

            // Neither fits nor splits: the reserve stays counted on this device and the next device is tried.
            used[device] = usedHere + reserved
            current += 1
            treat.insert(item, at: 0)
        }
        return clean(map)
    }

    /// The items still to place once the first tied module that may be split is split (the item is tried again
    /// first): accelerate's answer when an item and its tied modules do not fit but the item alone does. nil when
    /// no tied module can be split.
    private static func splittingTied(
        _ item: Item, tiedNames: [String], tiedItems: [Item], treat: [Item], noSplit: Set<String>
    ) -> [Item]? {
        for (tiedName, tiedItem) in zip(tiedNames, tiedItems) {
            guard !tiedItem.children.isEmpty, !noSplit.contains(tiedItem.className),
                let index = treat.firstIndex(where: { $0.name == tiedName })
            else { continue }
            return [item] + treat[..<index] + tiedItem.splitItems + treat[(index + 1)...]
        }
        return nil
    }

    /// `get_module_size_with_ties`: the item's size plus, for each tied parameter outside it, the size of the
    /// listed module holding it minus the parameter's own (counted) size. A tied parameter held by no listed
    /// module is skipped (accelerate raises IndexError there).
    static func sizeWithTies(_ tiedParameters: [String], moduleSize: Int, sizes: ModuleSizes, treat: [Item]) -> (
        Int, [String], [Item]
    ) {
        guard !tiedParameters.isEmpty else { return (moduleSize, [], []) }
        var total = moduleSize
        var names: [String] = []
        var items: [Item] = []
        for parameter in tiedParameters {
            guard let holder = treat.first(where: { parameter.hasPrefix($0.name + ".") }) else { continue }
            names.append(holder.name)
            items.append(holder)
            total += sizes[holder.name] - sizes[parameter]
        }
        return (total, names, items)
    }

    /// `get_max_layer_size`: the largest "layer" among `items` — a module without children, a module of a
    /// no-split class, or a tensor — and every name reaching that size. Modules with children are opened.
    static func maxLayerSize(_ items: [Item], sizes: ModuleSizes, noSplit: Set<String>) -> (Int, [String]) {
        var maxSize = 0
        var names: [String] = []
        var queue = items[...]
        var pending: [Item] = []  // children to visit before the rest of `queue`, in order
        while true {
            let item: Item
            if !pending.isEmpty {
                item = pending.removeFirst()
            } else if let next = queue.popFirst() {
                item = next
            } else {
                break
            }
            if item.children.isEmpty || noSplit.contains(item.className) {
                let size = sizes[item.name]
                if size > maxSize {
                    maxSize = size
                    names = [item.name]
                } else if size == maxSize {
                    names.append(item.name)
                }
            } else {
                pending = item.children.map(Item.module) + pending
            }
        }
        return (maxSize, names)
    }

    /// `clean_device_map`: wherever every key under a module name (more than one) holds the same device,
    /// they are replaced by the module name alone; recursively from the root.
    static func clean(_ map: OrderedDictionary<String, Device>) -> OrderedDictionary<String, Device> {
        var map = map
        func visit(_ module: String) {
            let prefix = module.isEmpty ? "" : module + "."
            let under = map.keys.filter { $0.hasPrefix(prefix) }
            let values = Set(under.compactMap { map[$0] })
            if values.count == 1, under.count > 1, let value = values.first {
                for key in under { map.removeValue(forKey: key) }
                map[module] = value
            }
            let depth = module.isEmpty ? 1 : module.split(separator: ".", omittingEmptySubsequences: false).count + 1
            var children: [String] = []
            var seen: Set<String> = []
            for key in map.keys where key.hasPrefix(prefix) && key.count > module.count {
                let child = key.split(separator: ".", omittingEmptySubsequences: false).prefix(depth).joined(
                    separator: ".")
                if seen.insert(child).inserted { children.append(child) }
            }
            for child in children { visit(child) }
        }
        visit("")
        return map
    }

    // MARK: get_balanced_memory

    /// `get_balanced_memory(model, max_memory, no_split_module_classes, dtype)` (low_zero off): with n
    /// accelerators of non-zero budget, every accelerator but the last gets at most
    /// `model_bytes // n + int(1.25 × max(first no-split block, mean leaf module))`, the last keeps its budget.
    /// With one accelerator and no budget from the user, it gets 90% of its size.
    static func balanced(
        _ budgets: [(device: Device, bytes: Double)], userSet: Bool, sizes: ModuleSizes, noSplit: [String],
        classOf: (String) -> String
    ) -> [(device: Device, bytes: Double)] {
        var budgets = budgets
        let count = budgets.filter { $0.device.isAccelerator && $0.bytes > 0 }.count
        guard count > 0 else { return budgets }
        if count == 1 && !userSet, let first = budgets.firstIndex(where: { $0.device.isAccelerator }) {
            budgets[first].bytes *= 0.9
        }
        var perAccelerator = sizes.total / count

        // The first block of each no-split class, in the order the sizes were first recorded.
        var blocks: [String: Int] = [:]
        if !noSplit.isEmpty {
            let classes = Set(noSplit)
            for name in sizes.order where !name.isEmpty {
                let className = classOf(name)
                if classes.contains(className) && blocks[className] == nil { blocks[className] = sizes[name] }
            }
        }
        let block = blocks.values.max() ?? 0
        // Leaves of the size table are tensors; without them, the leaves are the modules holding tensors directly.
        let tensorLeaves = Set(leaves(of: sizes.order))
        let moduleLeaves = leaves(of: sizes.order.filter { !tensorLeaves.contains($0) })
        let leafTotal = moduleLeaves.reduce(0) { $0 + sizes[$1] }
        let meanLeaf = Int(Double(leafTotal) / Double(max(moduleLeaves.count, 1)))
        perAccelerator += Int(1.25 * Double(max(block, meanLeaf)))

        let indices = budgets.enumerated().filter { $0.element.device.isAccelerator && $0.element.bytes > 0 }
            .sorted { $0.element.device < $1.element.device }.map(\.offset)
        for index in indices.dropLast() {
            budgets[index].bytes = min(Double(perAccelerator), budgets[index].bytes)
        }
        return budgets
    }

    /// `get_module_leaves`: names with no child name in `names` (a top-level name counts as nobody's child).
    static func leaves(of names: [String]) -> [String] {
        var childCount: [String: Int] = [:]
        for name in names where !name.isEmpty {
            guard let dot = name.lastIndex(of: ".") else { continue }
            childCount[String(name[..<dot]), default: 0] += 1
        }
        return names.filter { !$0.isEmpty && childCount[$0, default: 0] == 0 }
    }

    /// Byte-wise substring test (`needle in haystack` on ASCII module names).
    static func containsSubstring(_ haystack: String, _ needle: String) -> Bool {
        let h = Array(haystack.utf8)
        let n = Array(needle.utf8)
        guard n.count <= h.count else { return false }
        if n.isEmpty { return true }
        for start in 0...(h.count - n.count) where h[start] == n[0] {
            var match = true
            for offset in 1..<n.count where h[start + offset] != n[offset] {
                match = false
                break
            }
            if match { return true }
        }
        return false
    }
}
