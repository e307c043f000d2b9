import pytest

from hosting.models import CommissioningPolicy


@pytest.fixture
def policy(floor):
    return CommissioningPolicy.objects.create(
        site=floor["site"], burn_in_s=2, sample_interval_s=1, probe_timeout_s=2, max_tests_per_circuit=8
    )
