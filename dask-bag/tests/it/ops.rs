//! Every operation against std iterators, over random data and partitionings,
//! on every scheduler.

use std::collections::HashMap;

use dask_bag::{Bag, Error};
use dask_core::{Collection, Scheduler};
use dask_testing::INTENTIONAL_PANIC;
use proptest::prelude::*;

use crate::common::{check, data_and_parts};

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

dask_testing::scheduler_test! {
    fn from_sequence_and_fused_chain(s: &dyn Scheduler) {
        check(data_and_parts(), |(data, n)| {
            let bag = Bag::from_sequence(data.clone(), n).unwrap();
            prop_assert_eq!(bag.npartitions(), n);
            let chain = bag
                .map(|x| x * 3)
                .filter(|x| x % 2 == 0)
                .flat_map(|x| vec![x; (x.unsigned_abs() % 3) as usize])
                .map(|x| x - 1);
            let oracle: Vec<i64> = data
                .iter()
                .map(|x| x * 3)
                .filter(|x| x % 2 == 0)
                .flat_map(|x| vec![x; (x.unsigned_abs() % 3) as usize])
                .map(|x| x - 1)
                .collect();
            prop_assert_eq!(&bag.compute_with(s).unwrap(), &data);
            prop_assert_eq!(&chain.compute_with(s).unwrap(), &oracle);
            Ok(())
        });
    }

    fn partition_size_and_map_partitions(s: &dyn Scheduler) {
        check((proptest::collection::vec(any::<i32>(), 0..50), 1usize..10), |(data, size)| {
            let bag = Bag::from_sequence_with_partition_size(data.clone(), size).unwrap();
            let parts = bag.map_partitions(|p| vec![p]);
            let oracle: Vec<Vec<i32>> = if data.is_empty() {
                vec![vec![]]
            } else {
                data.chunks(size).map(<[i32]>::to_vec).collect()
            };
            prop_assert_eq!(&parts.compute_with(s).unwrap(), &oracle);
            Ok(())
        });
    }

    fn scalar_reductions(s: &dyn Scheduler) {
        check((data_and_parts(), 2usize..5), |((data, n), split_every)| {
            let bag = Bag::from_sequence(data.clone(), n)
                .unwrap()
                .with_split_every(split_every)
                .unwrap();
            prop_assert_eq!(bag.count().compute_with(s).unwrap(), data.len());
            prop_assert_eq!(bag.sum().compute_with(s).unwrap(), data.iter().sum::<i64>());
            let fold = bag.fold(0i64, |acc, x| acc + x * x, |a, b| a + b);
            prop_assert_eq!(fold.compute_with(s).unwrap(), data.iter().map(|x| x * x).sum::<i64>());
            let red = bag.reduction(
                |it| it.max().unwrap_or(i64::MIN),
                |ms| ms.into_iter().max().unwrap_or(i64::MIN),
            );
            prop_assert_eq!(red.compute_with(s).unwrap(), data.iter().copied().max().unwrap_or(i64::MIN));
            match data.iter().min() {
                Some(min) => {
                    prop_assert_eq!(bag.min().compute_with(s).unwrap(), *min);
                    prop_assert_eq!(bag.max().compute_with(s).unwrap(), *data.iter().max().unwrap());
                    let mean = data.iter().sum::<i64>() as f64 / data.len() as f64;
                    prop_assert!((bag.mean().compute_with(s).unwrap() - mean).abs() < 1e-9);
                }
                None => {
                    for err in [
                        bag.min().compute_with(s).unwrap_err(),
                        bag.max().compute_with(s).unwrap_err(),
                        bag.mean().compute_with(s).unwrap_err(),
                    ] {
                        prop_assert!(matches!(Error::find(&err), Some(Error::Empty { .. })), "{}", err);
                    }
                }
            }
            Ok(())
        });
    }

    fn frequencies_distinct_topk_foldby(s: &dyn Scheduler) {
        check((data_and_parts(), 1usize..8, 2usize..5), |((data, n), k, split_every)| {
            let bag = Bag::from_sequence(data.clone(), n)
                .unwrap()
                .with_split_every(split_every)
                .unwrap();
            let mut freq: HashMap<i64, usize> = HashMap::new();
            for &x in &data {
                *freq.entry(x).or_default() += 1;
            }
            let mut distinct = Vec::new();
            for &x in &data {
                if !distinct.contains(&x) {
                    distinct.push(x);
                }
            }
            // Stable sort by descending key, then the first k.
            let mut by_key = data.clone();
            by_key.sort_by_key(|x| std::cmp::Reverse(x.rem_euclid(7)));
            let top: Vec<i64> = by_key.into_iter().take(k).collect();
            let mut sums: HashMap<i64, i64> = HashMap::new();
            for &x in &data {
                *sums.entry(x.rem_euclid(5)).or_default() += x;
            }
            let topk = bag.topk(k, |x| x.rem_euclid(7)).unwrap();
            let foldby = bag.foldby(|x| x.rem_euclid(5), 0i64, |a, x| a + x, |a, b| a + b);
            prop_assert_eq!(
                sorted(bag.frequencies().compute_with(s).unwrap()),
                sorted(freq.into_iter().collect())
            );
            prop_assert_eq!(&bag.distinct().compute_with(s).unwrap(), &distinct);
            prop_assert_eq!(&topk.compute_with(s).unwrap(), &top);
            prop_assert_eq!(
                sorted(foldby.compute_with(s).unwrap()),
                sorted(sums.into_iter().collect())
            );
            Ok(())
        });
    }

    fn groupby_shuffle(s: &dyn Scheduler) {
        check((data_and_parts(), 1usize..6), |((data, n), nout)| {
            let bag = Bag::from_sequence(data.clone(), n).unwrap();
            let mut oracle: HashMap<i64, Vec<i64>> = HashMap::new();
            for &x in &data {
                oracle.entry(x.rem_euclid(4)).or_default().push(x);
            }
            let oracle = sorted(oracle.into_iter().collect::<Vec<_>>());
            let grouped = bag.groupby_into(|x| x.rem_euclid(4), nout).unwrap();
            prop_assert_eq!(grouped.npartitions(), nout);
            let same = bag.groupby(|x| x.rem_euclid(4));
            prop_assert_eq!(same.npartitions(), n);
            prop_assert_eq!(&sorted(grouped.compute_with(s).unwrap()), &oracle);
            prop_assert_eq!(&sorted(same.compute_with(s).unwrap()), &oracle);
            // Each key lives in exactly one output partition.
            let per_part = grouped.map_partitions(|p| vec![p.into_iter().map(|(k, _)| k).collect::<Vec<_>>()]);
            let mut keys: Vec<i64> = per_part.compute_with(s).unwrap().into_iter().flatten().collect();
            let total = keys.len();
            keys.sort();
            keys.dedup();
            prop_assert_eq!(keys.len(), total);
            Ok(())
        });
    }

    fn zip_starmap_flatten(s: &dyn Scheduler) {
        check(data_and_parts(), |(data, n)| {
            let a = Bag::from_sequence(data.clone(), n).unwrap();
            let b = a.map(|x| x.to_string());
            let zipped = a.zip(&b).unwrap();
            let star = zipped.starmap(|x, s| format!("{x}:{s}"));
            let triple = zipped.map(|(x, s)| (x, s, x * 2)).starmap3(|x, _, y| x + y);
            let nested = a.map(|x| vec![x; x.rem_euclid(3) as usize]).flatten();
            let oracle_star: Vec<String> = data.iter().map(|x| format!("{x}:{x}")).collect();
            let oracle_triple: Vec<i64> = data.iter().map(|x| x * 3).collect();
            let oracle_flat: Vec<i64> =
                data.iter().flat_map(|&x| vec![x; x.rem_euclid(3) as usize]).collect();
            prop_assert_eq!(&star.compute_with(s).unwrap(), &oracle_star);
            prop_assert_eq!(&triple.compute_with(s).unwrap(), &oracle_triple);
            prop_assert_eq!(&nested.compute_with(s).unwrap(), &oracle_flat);
            prop_assert_eq!(zipped.count().compute_with(s).unwrap(), data.len());
            Ok(())
        });
    }

    fn take_first_items(s: &dyn Scheduler) {
        check((data_and_parts(), 0usize..70), |((data, n), k)| {
            let bag = Bag::from_sequence(data.clone(), n).unwrap().map(|x| x + 1);
            let oracle: Vec<i64> = data.iter().map(|x| x + 1).take(k).collect();
            prop_assert_eq!(&bag.take_with(k, s).unwrap(), &oracle);
            Ok(())
        });
    }

    fn range_matches_std(s: &dyn Scheduler) {
        check((0u64..200, 1usize..12), |(len, n)| {
            let bag = Bag::range(len, n).unwrap();
            let oracle: Vec<u64> = (0..len).collect();
            prop_assert_eq!(&bag.compute_with(s).unwrap(), &oracle);
            prop_assert_eq!(bag.sum().compute_with(s).unwrap(), oracle.iter().sum::<u64>());
            Ok(())
        });
    }

    fn pluck_json(s: &dyn Scheduler) {
        check(data_and_parts(), |(data, n)| {
            let lines: Vec<String> = data
                .iter()
                .map(|x| format!("{{\"v\": {x}, \"l\": [{x}, {}]}}", x * 2))
                .collect();
            let bag = Bag::from_sequence(lines, n).unwrap();
            let v = bag.pluck("v").map(|j| j.as_i64());
            let l1 = bag.parse_json().pluck("l").pluck(1usize).map(|j| j.as_i64());
            let oracle: Vec<Option<i64>> = data.iter().map(|&x| Some(x)).collect();
            let oracle2: Vec<Option<i64>> = data.iter().map(|&x| Some(2 * x)).collect();
            prop_assert_eq!(&v.compute_with(s).unwrap(), &oracle);
            prop_assert_eq!(&l1.compute_with(s).unwrap(), &oracle2);
            Ok(())
        });
    }

    fn persist_and_from_delayed(s: &dyn Scheduler) {
        let data: Vec<i64> = (0..40).collect();
        let bag = Bag::from_sequence(data.clone(), 5).unwrap().map(|x| x * 2);
        let oracle: Vec<i64> = data.iter().map(|x| x * 2).collect();
        let p = bag.persist_with(s).unwrap();
        assert_eq!(p.compute_with(s).unwrap(), oracle);
        assert_eq!(p.filter(|x| x % 4 == 0).count().compute_with(s).unwrap(), 20);
        let parts = vec![
            dask_core::Delayed::value(vec![1i64, 2]),
            dask_core::delayed(|n: i64| (0..n).collect::<Vec<i64>>()).call((3,)),
        ];
        let bag = Bag::from_delayed(parts).unwrap();
        assert_eq!(bag.npartitions(), 2);
        assert_eq!(bag.map(|x| x + 1).compute_with(s).unwrap(), vec![2, 3, 1, 2, 3]);
    }

    fn several_collections_computed_together(s: &dyn Scheduler) {
        let bag = Bag::from_sequence(1..=10i64, 3).unwrap();
        let (total, n, items) =
            dask_core::compute_with((&bag.sum(), &bag.count(), &bag), s).unwrap();
        assert_eq!((total, n), (55, 10));
        assert_eq!(items, (1..=10).collect::<Vec<_>>());
    }

    fn take_computes_only_the_partitions_it_needs(s: &dyn Scheduler) {
        let bag = Bag::from_sequence(0..100i64, 10).unwrap().map(|x| {
            if x >= 10 {
                panic!("{INTENTIONAL_PANIC}: partition {} was computed", x / 10)
            }
            x
        });
        assert_eq!(bag.take_with(5, s).unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(bag.take_with(10, s).unwrap(), (0..10).collect::<Vec<_>>());
        let err = bag.take_with(11, s).unwrap_err();
        assert!(err.to_string().contains("was computed"), "{err}");
    }
}
