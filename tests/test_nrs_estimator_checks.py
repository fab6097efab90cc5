"""scikit-learn's own estimator checks for the NRS classifier and its MLP baseline.

Every check that applies runs and passes; none is marked as an expected failure. scikit-learn
skips two by itself when their optional dependencies are absent (pandas input, array-API input).
The check instances are tiny (few epochs, narrow layers) so the whole suite takes seconds; the
learning rate is raised so a few epochs still fit the checks' toy problems.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from companion.nrs import MLPBaselineClassifier, NRSClassifier


def expected_failed_checks(estimator):
    """No check is expected to fail (a reason would be given here for each one that did)."""
    return {}


@parametrize_with_checks(
    [
        NRSClassifier(n_mul=2, hidden_size=16, max_epochs=10, batch_size=32, lr=1e-2, device="cpu", random_state=0),
        MLPBaselineClassifier(hidden_size=16, n_hidden=2, max_epochs=10, batch_size=32, lr=1e-2, device="cpu",
                              random_state=0),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
