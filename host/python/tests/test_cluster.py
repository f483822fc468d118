"""wasp.Cluster, as ipyparallel's Cluster: a local cluster in its own profile."""

import pytest

import wasp


def test_a_cluster_starts_connects_and_stops_in_its_own_profile(wasp_dir):
    cluster = wasp.Cluster(n=1)
    with cluster as rc:
        assert len(rc.ids) == 1
        assert cluster.profile_dir.parent == wasp_dir
        assert (cluster.profile_dir / "security").is_dir()
        assert "running" in repr(cluster)
    # Stopped, and the profile it made is gone.
    assert not cluster.profile_dir.exists()
    assert "stopped" in repr(cluster)
    with pytest.raises(wasp.WaspError):
        wasp.Client(profile=cluster.profile)


def test_a_bad_flag_fails_with_the_commands_words(wasp_dir):
    cluster = wasp.Cluster(n=1, scheme="nonsense")
    with pytest.raises(wasp.WaspError, match="wasp cluster start failed"):
        cluster.start_and_connect_sync()
    assert not cluster.profile_dir.exists()
