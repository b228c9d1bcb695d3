//! The order in which queues are asked for work: a weighted lottery per fetch, so a busy
//! high-priority queue gets most fetches but a low one is never starved; or strict order.

use rand::Rng;

use crate::QueueWeight;

/// Indices into `queues`, highest priority first for this fetch.
pub(crate) fn fetch_order(queues: &[QueueWeight], strict: bool, rng: &mut impl Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..queues.len()).collect();
    if strict {
        order.sort_by_key(|&i| std::cmp::Reverse(queues[i].weight));
        return order;
    }
    // Draw without replacement, each remaining queue in proportion to its weight.
    let mut drawn = Vec::with_capacity(order.len());
    while !order.is_empty() {
        let total: u64 = order.iter().map(|&i| u64::from(queues[i].weight)).sum();
        let mut ticket = rng.random_range(0..total.max(1));
        let pick = order
            .iter()
            .position(|&i| {
                let weight = u64::from(queues[i].weight);
                if ticket < weight {
                    true
                } else {
                    ticket -= weight;
                    false
                }
            })
            .unwrap_or(0);
        drawn.push(order.remove(pick));
    }
    drawn
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn first_picks_follow_the_weights() {
        let queues = [
            QueueWeight::new("critical", 6),
            QueueWeight::new("default", 3),
            QueueWeight::new("low", 1),
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut firsts = [0u32; 3];
        let draws = 100_000;
        for _ in 0..draws {
            let order = fetch_order(&queues, false, &mut rng);
            assert_eq!(order.len(), 3);
            firsts[order[0]] += 1;
        }
        for (i, expected) in [0.6, 0.3, 0.1].into_iter().enumerate() {
            let share = f64::from(firsts[i]) / f64::from(draws);
            assert!(
                (share - expected).abs() < 0.01,
                "queue {i}: {share} vs {expected}"
            );
        }
    }

    #[test]
    fn strict_order_is_by_weight() {
        let queues = [QueueWeight::new("low", 1), QueueWeight::new("critical", 9)];
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(fetch_order(&queues, true, &mut rng), [1, 0]);
    }
}
