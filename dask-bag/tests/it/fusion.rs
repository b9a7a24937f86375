//! Graph shapes: fused pipelines and reduction trees.

use dask_bag::{read_text, Bag};
use dask_core::Collection;

use crate::common::TempDir;

#[test]
fn chained_maps_are_one_task_per_partition() {
    let bag = Bag::from_sequence(0..100i64, 4).unwrap();
    let chain = bag
        .map(|x| x + 1)
        .filter(|x| x % 3 != 0)
        .map(|x| x * 2)
        .flat_map(|x| [x, x]);
    let hlg = chain.graph();
    // The data layer and one fused layer.
    assert_eq!(hlg.layers().count(), 2);
    let top = hlg.layer(chain.name()).unwrap();
    assert_eq!(top.graph.len(), 4);
    for (_, task) in top.graph.iter() {
        assert_eq!(task.op.name(), "map|filter|map|flat_map");
        assert_eq!(task.depth(), 1);
    }
    assert_eq!(hlg.len(), 8);
}

#[test]
fn reading_splitting_and_counting_is_one_task_per_block() {
    let dir = TempDir::new("fuse");
    std::fs::write(dir.path().join("a.txt"), "a b\nc d\ne f\n").unwrap();
    let freq = read_text(dir.join("a.txt"), Some(4))
        .unwrap()
        .flat_map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .frequencies();
    let hlg = freq.graph();
    assert_eq!(hlg.layers().count(), 1);
    let g = hlg.to_graph();
    let part_tasks = g
        .iter()
        .filter(|(_, t)| t.op.name() == "read_text|flat_map|frequencies-part")
        .count();
    assert_eq!(part_tasks, 3);
    assert_eq!(g.len(), 4); // 3 blocks + the final aggregate
}

#[test]
fn reduction_tree_follows_split_every() {
    let bag = Bag::from_sequence(0..100i64, 20)
        .unwrap()
        .with_split_every(4)
        .unwrap();
    let count = bag.count();
    let g = count.graph().to_graph();
    // 20 data + 20 per-partition + 5 + 2 combines + 1 final.
    assert_eq!(g.len(), 20 + 20 + 5 + 2 + 1);
    let bag8 = Bag::from_sequence(0..100i64, 8).unwrap();
    assert_eq!(bag8.count().graph().to_graph().len(), 8 + 8 + 1);
}

#[test]
fn zip_fuses_both_pipelines() {
    let a = Bag::from_sequence(0..10i64, 2).unwrap().map(|x| x + 1);
    let b = Bag::from_sequence(0..10i64, 2).unwrap().filter(|x| *x >= 0);
    let z = a.zip(&b).unwrap().starmap(|x, y| x * y);
    let hlg = z.graph();
    // Two data layers and one fused layer on top.
    assert_eq!(hlg.layers().count(), 3);
    let top = hlg.layer(z.name()).unwrap();
    assert_eq!(top.graph.len(), 2);
    for (_, task) in top.graph.iter() {
        assert_eq!(task.op.name(), "zip(map, filter)|starmap");
    }
}
