"""The benchmarks ``run_all.py`` knows: how to start each one, where its JSON goes and
which of its figures the summary lists.

To add a benchmark, add a :class:`Bench` here (and its targets, if it has any, to
``targets.py``).  The script must print one JSON document with ``common.emit``.

A :class:`Figure` is one line of the summary's "Other measured figures" per element of
its ``each`` paths (see ``targets.py`` for the path syntax; a path ending in ``[*]`` is
every element of that list, any other path is one element if it is there).  In the
template, ``{path}`` is replaced by the element's value there (floats rounded for
reading, integers and text as they are, ``-`` where there is none); a path starting
with ``/`` is read from the whole document.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    template: str
    each: tuple = ()           #: element paths; () means the whole document
    needs: str | None = None   #: skip an element that has nothing at this path


@dataclass(frozen=True)
class Bench:
    """One benchmark: how to start it (full and --quick), its time limits (seconds),
    its results file and its summary lines."""
    name: str
    script: str                        #: file in benchmarks/ (or an absolute path)
    full_args: tuple = ()
    quick_args: tuple = ()
    timeout: float = 1800.0
    quick_timeout: float = 120.0
    what: str = ""
    figures: tuple = ()                #: Figure lines for a finished run
    partial: Figure | None = None      #: lines for the JSON lines printed before a time-out
    results_file: str = ""             #: default ``<name>.json``

    @property
    def results(self) -> str:
        return self.results_file or f"{self.name}.json"


_TRAINING_CELL = ("secure training {rows} x {features}: {seconds_per_tree_total} s/tree total, "
                  "{seconds_per_tree_online} s online, plain xgboost "
                  "{plain_xgboost_seconds_per_tree} s/tree ({secure_over_plain}x), "
                  "max prediction difference vs xgboost {max_prediction_difference}")

BENCHMARKS = {b.name: b for b in [
    Bench("training", "bench_training.py", ("--trees", "10"),
          ("--rows", "300", "--features", "4", "--trees", "1"), timeout=5400.0,
          what="secure training (XORBoost config over 10 trees + rows x features scaling)",
          figures=(
              Figure(_TRAINING_CELL, ("scaling[*]", "runs[*]", "xorboost_config")),
              Figure("secure training {rows} x {features} with a separate offline phase "
                     "(train(offline='before')): {seconds_per_tree_total} s/tree total, "
                     "{seconds_per_tree_online} s online, {seconds_per_tree_offline} s offline, "
                     "max prediction difference vs xgboost {max_prediction_difference}",
                     ("xorboost_config_offline_before",)),
          ),
          partial=Figure("secure training {rows} x {features} (finished before the time-out): "
                         "{seconds_per_tree_total} s/tree total, {seconds_per_tree_online} s "
                         "online, plain xgboost {plain_xgboost_seconds_per_tree} s/tree",
                         needs="seconds_per_tree_total")),
    Bench("training_links", "bench_training.py", ("--links", "5000x50x2"),
          ("--links", "300x4x1"), timeout=3600.0, quick_timeout=300.0,
          what="secure training over emulated links (local, 1gbit:10ms, 100mbit:50ms): "
               "measured vs modelled from the local run",
          figures=(Figure("secure training {rows} x {features} over {link}: measured "
                          "{measured_seconds_per_tree} s/tree, replayed from the local run's "
                          "traces {replayed_seconds_per_tree} s/tree (measured/replayed "
                          "{measured_over_replayed}), the issue's formula "
                          "{modelled_seconds_per_tree} s/tree ({measured_over_modelled})",
                          ("links[*]",)),)),
    Bench("tree_plain", "bench_tree_plain.py", (), ("--quick",), timeout=1200.0,
          what="plain (numpy) tree backend vs xgboost hist",
          figures=(Figure("plain ppboost backend {rows} x {features}: {plain_s_per_tree} s/tree "
                          "vs xgboost {xgboost_s_per_tree_incl_sketch} s/tree",
                          ("xorboost_config",)),)),
    Bench("mpc", "bench_mpc.py", ("--n", "1000000"), ("--n", "2000", "--reps", "1"),
          timeout=1200.0,
          what="MPC core: Beaver product, owner-known permutation, truncation, b2a",
          figures=(Figure("MPC {name} ({elements} elements): online {online_seconds} s, "
                          "{slowdown_vs_numpy}x numpy wall, {cpu_slowdown_vs_numpy}x numpy CPU",
                          ("results[*]",)),)),
    Bench("mpc_nonlinear", "bench_mpc_nonlinear.py", ("--n", "1000000"),
          ("--n", "2000", "--reps", "1"), timeout=1800.0,
          what="MPC comparison family: ltz, argmax, reciprocal, sigmoid, exp",
          figures=(Figure("MPC {name} ({elements} elements): {elements_per_second}/s prefetched, "
                          "{with_dealer_elements_per_second}/s with the dealer on demand, "
                          "{slowdown_vs_numpy}x numpy wall", ("results[*]",)),)),
    Bench("secure_binning", "bench_secure_binning.py", (),
          ("--rows", "2000", "--features", "4", "--parties", "2", "--skip-quality"),
          timeout=1800.0,
          what="horizontal binning: shared_cuts vs np.unique and xgboost's sketch",
          figures=(
              Figure("secure binning, {parties} parties, {rows} x {features}, {max_bin} bins: "
                     "shared_cuts {shared_cuts.wall_seconds} s wall, "
                     "{shared_cuts.bytes_sent_per_party[0]} bytes sent by party 0, "
                     "{shared_cuts.rounds} rounds; unpadded sort "
                     "{shared_cuts_unpadded.wall_seconds} s; in the clear np.unique "
                     "{numpy_unique_seconds} s, xgboost's sketch {xgboost_sketch_seconds} s; "
                     "share of features whose cuts equal the merged exact summary's "
                     "{shared_cuts.fraction_equal_merged_summary_cuts}", ("results[*]",)),
              Figure("secure binning cuts on {dataset} ({parties} parties, {max_bin} bins): "
                     "share of xgboost's cut values found {fraction_of_xgboost_cut_values_found}, "
                     "of features with xgboost's cuts {fraction_equal_xgboost_sketch_cuts}",
                     ("quality[*]",)),
          )),
    Bench("transport", "bench_transport.py", (), ("--size-mb", "1", "--rounds", "2"),
          timeout=300.0, what="transport throughput: TLS processes vs in-process",
          figures=(Figure("transport: TLS processes {tls_processes.pingpong_MBps} MB/s ping-pong, "
                          "round trip {tls_processes.small_message_round_trip_us} us; in-process "
                          "{inprocess_threads.pingpong_MBps} MB/s; numpy copy "
                          "{numpy_copy_MBps} MB/s"),)),
    Bench("inference", "bench_inference.py", (),
          ("--queries", "5", "--key-bits", "1024", "--skip-big"), timeout=1800.0,
          what="encrypted prediction in process: latency stages, batch, enrolment",
          figures=(Figure("inference ({key_bits}-bit keys): one query p50 "
                          "{single_query.end_to_end.p50_ms} ms encrypted, plain booster.predict "
                          "{single_query.plain_predict.p50_ms} ms; batch of 64 "
                          "{batch_64.median_ms_per_batch.end_to_end} ms encrypted, plain "
                          "{batch_64.plain_booster_predict_ms} ms"),)),
    Bench("server", "bench_server.py", (),
          ("--key-bits", "1024", "--trees", "5", "--seconds", "0.3", "--latency-n", "5",
           "--clients", "1,2", "--workers", "1"), timeout=1800.0,
          what="encrypted prediction over HTTP and HTTPS: latency, throughput vs clients",
          figures=(
              Figure("server: plain xgboost {plain_xgboost.rows_per_s_batch*} rows/s "
                     "(batches of {batch})"),
              Figure("server: encrypted in-process ceiling {rows_per_s} rows/s "
                     "({threads} thread(s))", ("in_process_predict[*]",)),
              Figure("server over HTTPS, {workers} worker(s): one query end to end p50 "
                     "{latency_single_query.end_to_end_ms.p50} ms, p99 "
                     "{latency_single_query.end_to_end_ms.p99} ms", ("servers_https[*]",)),
              Figure("server, {workers} worker(s), 4 clients x batches of {/batch}: HTTPS "
                     "{clients[clients=4].https_rows_per_s} rows/s, HTTP "
                     "{clients[clients=4].http_rows_per_s} rows/s (HTTPS / HTTP "
                     "{clients[clients=4].https_over_http})", ("https_vs_http[*]",)),
          )),
    Bench("server_soak", "bench_server.py", ("--soak",),
          ("--soak", "--quick", "--soak-seconds", "6"), timeout=600.0, quick_timeout=120.0,
          results_file="server_soak.json",
          what="service soak over HTTPS: 8 clients, valid and invalid requests, <= 30 s",
          figures=(Figure("server soak ({soak.scheme}, {soak.clients} clients, {soak.seconds} s, "
                          "{key_bits}-bit keys): {soak.requests} requests, "
                          "{soak.server_errors_5xx} 5xx, {soak.unexpected_status} unexpected "
                          "statuses, {soak.decryptions_checked} answers decrypted "
                          "({soak.decryption_errors} wrong), server RSS "
                          "{soak.server_rss_kib.after_warmup} KiB after the warm-up, "
                          "{soak.server_rss_kib.end} KiB at the end "
                          "({soak.server_rss_growth_percent}%); "
                          "{soak.server_log.disconnect_warnings} aborted uploads logged as "
                          "{soak.server_log.lines} log lines, "
                          "{soak.server_log.tracebacks} tracebacks"),)),
    Bench("deploy", "bench_deploy.py", (), ("--quick",), timeout=3600.0, quick_timeout=180.0,
          what="deployment: XORBoost config through `ppboost party` processes vs train(); PSI",
          figures=(
              Figure("deployed training {rows} x {features}, {trees} trees ({network}): "
                     "{deployed.seconds_per_tree} s/tree through `ppboost party` processes vs "
                     "{simulated.seconds_per_tree} s/tree in train() "
                     "({wall_per_tree_ratio_deployed_over_simulated}x; 1-min load average at their "
                     "starts {deployed.load_average_before_after[0][0]} and "
                     "{simulated.load_average_before_after[0][0]}; CPU time "
                     "{cpu_seconds_deployed_all_processes} s in all processes vs "
                     "{cpu_seconds_simulated_train} s in train(), "
                     "{cpu_ratio_deployed_over_simulated}x); bytes per tree equal: "
                     "{bytes_per_tree_equal}, rounds per tree equal: {rounds_per_tree_equal} "
                     "(hospital, tree 1: {deployed.parties.hospital.bytes_sent_per_tree[0]} bytes, "
                     "{deployed.parties.hospital.rounds_per_tree[0]} rounds); set-up: binning and "
                     "sharing {deployed.binning_and_sharing_seconds} s, agreement + PSI + delivery "
                     "{deployed.agreement_psi_delivery_seconds} s; max prediction difference vs "
                     "train() {max_prediction_difference_deployed_vs_simulated}, vs xgboost "
                     "{max_prediction_difference_deployed_vs_xgboost}", ("xorboost_config",)),
              Figure("deployed model checked in the PSI's row order (replayed from the analyst's "
                     "checkpoint seed, a second run): max prediction difference vs xgboost on the "
                     "join in that order {max_prediction_difference_vs_xgboost_in_the_psi_row_order}"
                     ", vs xgboost in file order "
                     "{max_prediction_difference_vs_xgboost_in_file_order} (xgboost itself, "
                     "the two orders: {xgboost_itself_psi_row_order_vs_file_order})",
                     ("xorboost_config.order_check",)),
              Figure("deployed on {network} addresses (no namespaces): {seconds_per_tree} s/tree "
                     "({wall_per_tree_ratio_over_simulated}x train(); 1-min load average "
                     "{load_average_before_after[0][0]} at its start)", ("xorboost_config.loopback",)),
              Figure("PSI, {ids_per_party} ids at each of 2 parties ({ids_in_common} in common): "
                     "deployed {deployed.agreement_psi_delivery_seconds} s (agreement + PSI + "
                     "delivery, from the parties' stats); psi_leader/psi_partner in threads "
                     "{threads_inprocess.seconds} s, in 2 processes over TLS "
                     "{processes_tls.seconds} s", ("psi",)),
          )),
    Bench("federated", "bench_federated.py", (), ("--quick",), timeout=3600.0,
          quick_timeout=300.0,
          what="federated mode (secure aggregation of local histograms): 3 parties, "
               "1,000,000 x 100, depth 6, 256 bins, 10 trees, vs xgboost hist on the pooled rows",
          figures=(
              Figure("federated {setting.rows} x {setting.features}, {setting.parties} parties: "
                     "{federated.seconds_per_tree} s/tree after a {federated.setup_seconds} s "
                     "set-up (CPU {federated.cpu_seconds_per_tree_all_parties} s/tree, all "
                     "parties); xgboost.train {xgboost.seconds_per_tree} s/tree "
                     "({xgboost.seconds_per_tree_after_first} s after its first iteration, "
                     "CPU {xgboost.cpu_seconds_per_tree_after_first} s; DMatrix "
                     "{xgboost.dmatrix_seconds} s); ratios {ratios.seconds_per_tree_federated_over_"
                     "xgboost}x per tree, {ratios.seconds_per_tree_federated_over_xgboost_after_"
                     "first}x after xgboost's first iteration, {ratios.total_seconds_federated_"
                     "over_xgboost}x in total; peak RSS {federated.peak_rss_MB} MB vs "
                     "{xgboost.peak_rss_MB} MB; test AUC {federated.test_auc} vs "
                     "{xgboost.test_auc}; 1-min load {federated.load_average_before_after[0][0]}"),
              Figure("federated histogram kernel, the calls training makes: "
                     "{kernel.all_parties_seconds_per_tree} s/tree for all parties "
                     "({kernel.per_party_seconds_per_tree_after_first} s per party after the "
                     "first tree), {ratios.kernel_seconds_per_tree_over_xgboost}x xgboost.train's "
                     "seconds per tree, {ratios.kernel_seconds_per_tree_over_xgboost_after_first}x "
                     "its steady state; one party's round-1 calls replayed alone "
                     "({kernel.replay.rows_per_party} rows): "
                     "{kernel.replay.threads_1_seconds_per_tree} s on 1 thread, "
                     "{kernel.replay.threads_2_seconds_per_tree} s on 2"),
          )),
    Bench("federated_higgs", "bench_federated.py", ("--higgs", "--skip-xgboost"), ("--quick",),
          timeout=3600.0, quick_timeout=300.0,
          what="federated mode at 10,000,000 x 28 (a HIGGS-sized synthetic set): memory",
          figures=(Figure("federated {setting.rows} x {setting.features}: peak RSS "
                          "{federated.peak_rss_MB} MB, {federated.seconds_per_tree} s/tree after "
                          "a {federated.setup_seconds} s set-up, test AUC {federated.test_auc}"),),
          results_file="federated_higgs.json"),
    Bench("dp", "bench_dp.py", (), ("--quick",), timeout=5400.0, quick_timeout=600.0,
          what="differential privacy in MPC: test AUC and membership advantage vs epsilon "
               "(MS 100k x 3 hospitals, breast_cancer) next to non-private xgboost",
          figures=(
              Figure("DP {/datasets.ms.rows} MS rows, epsilon {epsilon}: test AUC "
                     "{test_auc_mean} (non-private xgboost {/datasets.ms.xgboost.test_auc}), "
                     "membership advantage {mia_advantage_mean} (xgboost "
                     "{/datasets.ms.xgboost.mia_advantage}), {trees} trees",
                     ("datasets.ms.runs[*]",), needs="test_auc_mean"),
              Figure("DP breast_cancer, epsilon {epsilon}: test AUC {test_auc_mean} "
                     "(non-private xgboost {/datasets.breast_cancer.xgboost.test_auc}), "
                     "membership advantage {mia_advantage_mean}",
                     ("datasets.breast_cancer.runs[*]",), needs="test_auc_mean"),
          )),
]}
