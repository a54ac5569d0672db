"""Multi-step agent runs in real sandboxes: the task contract, the sandbox, the loop and its report."""

from taxlens.agent.loop import Trajectory, run_tasks
from taxlens.agent.policies import EndpointPolicy, ModelPolicy, ScriptedPolicy
from taxlens.agent.report import AgentReport, agent_comparison, plot_comparison
from taxlens.agent.sandbox import Sandbox
from taxlens.agent.tasks import AgentTask, load_tasks

__all__ = ["AgentReport", "AgentTask", "EndpointPolicy", "ModelPolicy", "Sandbox", "ScriptedPolicy", "Trajectory",
           "agent_comparison", "load_tasks", "plot_comparison", "run_tasks"]
